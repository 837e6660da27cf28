"""The forwarding itself: one raw ASGI handler behind the route table.

It works on ASGI header pairs and a lean keep-alive HTTP/1.1 pool (``shared.ConnectionPool``): no
Litestar request or response objects and no client-side cookie jar (which would carry one user's
``Set-Cookie`` into the next user's request), so the per-request work is the route lookup, the
token decision, the header filter and the two streams.

A request body is read whole, within ``body_timeout`` seconds, before a private service is
contacted: a client that sends its body one byte at a time holds a slot of its own address's
budget (``max_requests_per_client``) until the deadline answers it 408, and never a connection
to a private service. Answers still stream back as they arrive.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import AsyncIterator, Sequence
from typing import TYPE_CHECKING, cast
from urllib.parse import urlsplit

from litestar.types import Empty
from litestar.utils.scope.state import CONNECTION_STATE_KEY

from gateway.at_once import ForwardAtOnce, RelayAtOnce
from gateway.headers import request_headers, response_headers
from gateway.routes import Route, find_route, known_route, match_route
from gateway.token_check import TokenChecker
from shared import (
    BadGatewayError,
    BadRequestError,
    ConnectionPool,
    ContentTooLargeError,
    GatewayTimeoutError,
    RememberedRefusals,
    RequestTimeoutError,
    TooManyRequestsError,
    UpstreamError,
    UpstreamResponse,
    UpstreamTimeoutError,
    current_request_id,
    get_logger,
)

if TYPE_CHECKING:
    from litestar.types import HTTPScope, Receive, Scope, Send

    from gateway.webhook_relay import WebhookRelay
    from shared import Lane
    from shared._lane_protocol import LaneExchange

__all__ = ["ClientBudget", "Proxy", "Upstream"]

logger = get_logger("gateway.proxy")


_BODY_TOO_LARGE = "The request body is larger than this gateway accepts."

# Refusals repeated from memory: how many (address, route) pairs, and for how long at most
# whatever the upstream's Retry-After says.
REMEMBERED_REFUSALS = 10_000
MAX_REMEMBERED_SECONDS = 3600
# A client that did not wait its Retry-After gets its repeated 429 after this long (at most):
# a closed-loop burst then knocks about once a second per connection instead of as fast as the
# gateway can refuse, and a held refusal costs no CPU (it still counts in the address's budget).
REFUSAL_DELAY_SECONDS = 1.0


def _retry_after_seconds(headers: Sequence[tuple[bytes, bytes]]) -> int | None:
    """An upstream's ``Retry-After`` in seconds (the date form is not honoured here)."""
    for name, value in headers:
        if name == b"retry-after" and value.isdigit():
            return min(int(value), MAX_REMEMBERED_SECONDS)
    return None


class _ClientGoneError(Exception):
    """The client disconnected while its request body was being read."""


class ClientBudget:
    """Requests in flight per client address, at most ``limit`` each (per gateway process).

    The address is the socket peer, or the client named by a trusted proxy's ``X-Forwarded-For``
    (uvicorn rewrites ``scope["client"]`` for the peers in ``FORWARDED_ALLOW_IPS``).
    """

    __slots__ = ("_in_flight", "limit")

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self._in_flight: dict[str, int] = {}

    def in_flight(self, address: str) -> int:
        return self._in_flight.get(address, 0)

    def take(self, address: str) -> None:
        """Count one more request for ``address``.

        Raises:
            TooManyRequestsError: the address already has ``limit`` requests in flight.
        """
        count = self._in_flight.get(address, 0)
        if count >= self.limit:
            raise TooManyRequestsError(
                "Too many requests in flight from this address; retry later.",
                headers={"Retry-After": "1"},
                extra={"retry_after": 1},
            )
        self._in_flight[address] = count + 1

    def give_back(self, address: str) -> None:
        count = self._in_flight.get(address, 0) - 1
        if count > 0:
            self._in_flight[address] = count
        else:
            # No entry for an idle address: the table stays as small as the clients in flight.
            self._in_flight.pop(address, None)


class Upstream:
    """One private service: its address and the gateway's connection pool to it."""

    def __init__(
        self,
        name: str,
        base_url: str,
        *,
        connect_timeout: float,
        timeout: float,
        max_connections: int,
    ) -> None:
        self.name = name
        self.base_url = base_url.rstrip("/")
        address = urlsplit(self.base_url)
        self.host = address.hostname or "127.0.0.1"
        self.port = address.port or 80
        self.connect_timeout = connect_timeout
        self.timeout = timeout
        self.max_connections = max_connections
        self._pool: ConnectionPool | None = None

    def open(self) -> None:
        """Create the connection pool (from the app's lifespan; connections open on demand)."""
        self._pool = ConnectionPool(
            self.host,
            self.port,
            max_connections=self.max_connections,
            connect_timeout=self.connect_timeout,
        )

    @property
    def pool(self) -> ConnectionPool:
        if self._pool is None:
            raise RuntimeError(f"the {self.name} connection pool is not open")
        return self._pool

    async def request(
        self,
        method: str,
        target: str,
        headers: Sequence[tuple[bytes, bytes]],
        body: bytes | AsyncIterator[bytes] | None = None,
        *,
        read_timeout: float | None = None,
        content_length: bool = False,
    ) -> UpstreamResponse:
        """Raises ``UpstreamError``; :meth:`send` maps it to the gateway's answer."""
        return await self.pool.request(
            method,
            target,
            headers,
            body,
            read_timeout=self.timeout if read_timeout is None else read_timeout,
            content_length=content_length,
        )

    async def send(
        self,
        method: str,
        target: str,
        headers: Sequence[tuple[bytes, bytes]],
        body: bytes | AsyncIterator[bytes] | None,
        *,
        content_length: bool,
    ) -> UpstreamResponse:
        """The upstream's answer, its body not read yet.

        Raises:
            BadGatewayError: refused, reset, or not speaking HTTP.
            GatewayTimeoutError: no connection or no answer in time.
        """
        try:
            return await self.pool.request(
                method,
                target,
                headers,
                body,
                read_timeout=self.timeout,
                content_length=content_length,
            )
        except UpstreamError as exc:
            raise self.failure(exc) from None

    def failure(self, exc: UpstreamError) -> BadGatewayError | GatewayTimeoutError:
        """What the client is answered when this service gave no answer (``exc``), logged."""
        if isinstance(exc, UpstreamTimeoutError):
            logger.warning("upstream timeout", extra={"upstream": self.name})
            return GatewayTimeoutError(f"The {self.name} service did not answer in time.")
        logger.warning(
            "upstream unreachable", extra={"upstream": self.name, "error": type(exc).__name__}
        )
        return BadGatewayError(f"The {self.name} service could not be reached.")

    async def healthy(self) -> None:
        """For ``/readyz``: raises unless the service answers its ``/healthz`` with 200."""
        response = await self.request("GET", "/healthz", (), read_timeout=self.connect_timeout)
        await response.read()
        if response.status != 200:
            raise RuntimeError(f"{self.name} /healthz answered {response.status}")

    def close(self) -> None:
        if self._pool is not None:
            self._pool.close()
            self._pool = None


async def _read_body(receive: Receive, limit: int) -> bytes:
    """The client's whole body, refused past ``limit`` bytes."""
    chunks: list[bytes] = []
    received = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise _ClientGoneError
        chunk = cast("bytes", message.get("body", b""))
        received += len(chunk)
        if received > limit:
            raise ContentTooLargeError(_BODY_TOO_LARGE)
        chunks.append(chunk)
        if not message.get("more_body", False):
            return chunks[0] if len(chunks) == 1 else b"".join(chunks)


def _target(route: Route, path: str, scope: HTTPScope) -> str:
    """What the upstream is asked for: the public path as the upstream routes it, and the
    query."""
    target = route.upstream_path(path)
    query: bytes = scope.get("query_string", b"")
    if query:
        target += "?" + query.decode("latin-1")
    return target


async def _send_options(send: Send, allow: str) -> None:
    """RFC 9110 §9.3.7: what the path supports, from the route table; no upstream is asked."""
    headers = [(b"allow", allow.encode()), (b"content-length", b"0")]
    await send({"type": "http.response.start", "status": 204, "headers": headers})
    await send({"type": "http.response.body", "body": b"", "more_body": False})


class Proxy:
    """The ASGI app mounted at ``/api/v1`` and ``/webhooks/stripe``."""

    def __init__(
        self,
        upstreams: dict[str, Upstream],
        token_checker: TokenChecker,
        *,
        internal_token: str,
        max_body_bytes: int,
        body_timeout: float,
        client_budget: ClientBudget,
        relay: WebhookRelay | None = None,
    ) -> None:
        self.upstreams = upstreams
        self.relay = relay
        self.token_checker = token_checker
        self.internal_token = internal_token.encode()
        self.max_body_bytes = max_body_bytes
        self.body_timeout = body_timeout
        self.client_budget = client_budget
        self.refusals = RememberedRefusals(REMEMBERED_REFUSALS)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        scope = cast("HTTPScope", scope)
        raw_path: bytes = scope.get("raw_path") or scope["path"].encode()
        # The mount left only the tail in scope["path"] (and the metrics middleware cached a URL
        # from it); problem details must name the public path.
        scope["path"] = raw_path.decode("latin-1")
        # (Only a state some layer already created can hold one: the fast lane creates none.)
        state = scope.get("state", {}).get(CONNECTION_STATE_KEY)
        if state is not None:
            state.url = Empty
        if scope["method"] == "OPTIONS":  # a CORS preflight never gets here: CORS answers it
            await _send_options(send, find_route(scope["path"]).allow)
            return
        client = scope.get("client")
        address = client[0] if client else ""
        self.client_budget.take(address)
        try:
            await self._forward(scope, receive, send, address)
        finally:
            self.client_budget.give_back(address)

    def forward_at_once(self, lane: Lane, exchange: LaneExchange) -> bool:
        """Forward a request from callbacks alone (``gateway/at_once.py``) when nothing in it
        needs a wait: a ``GET`` with no body, or a ``POST`` to the relayed route with its whole
        body in (``Content-Length`` framed, within the limit, no ``Expect``), on a route that
        neither limits addresses nor revokes; one ``Authorization`` whose decision is cached
        (on a token route); the address under its budget; and for a ``GET`` a free slot with an
        idle connection to the upstream. False (nothing done) leaves the request to
        :meth:`__call__`, which answers every other case as before."""
        scope = exchange.scope
        method = scope["method"]
        path = scope["raw_path"].decode("latin-1")
        route = known_route(path)
        if (
            route is None
            or route.limited_per_address
            or route.revokes_token
            or method not in route.methods
            or method != ("POST" if route.relayed and self.relay is not None else "GET")
        ):
            return False
        authorization: bytes | None = None
        length = 0
        for name, value in scope["headers"]:
            if name == b"authorization":
                if authorization is not None:
                    return False
                authorization = value
            elif name == b"content-length":
                if length or not value.isdigit():
                    return False
                length = int(value)
            elif name in (b"transfer-encoding", b"expect"):
                return False
        if (method == "GET") != (length == 0) or length > self.max_body_bytes:
            return False
        identity = None
        if route.needs_token:
            identity = self.token_checker.known(authorization)
            if identity is None:
                return False
        client = scope.get("client")
        address = client[0] if client else ""
        budget = self.client_budget
        if budget.in_flight(address) >= budget.limit:
            return False
        upstream = self.upstreams[route.upstream]
        connection = None
        if method == "GET":
            connection = upstream.pool.ready_connection()
            if connection is None:
                return False
        scope["path"] = path  # as __call__ sets it: problems and the log name the public path
        headers = request_headers(
            scope["headers"],
            identity=identity,
            internal_token=self.internal_token,
            client_address=address.encode(),
            request_id=exchange.request_id.encode(),
        )
        target = _target(route, path, scope)
        if connection is not None:
            ForwardAtOnce(lane, self, exchange, upstream, connection, address).send(target, headers)
        else:
            assert self.relay is not None  # a POST gets here for the relay only
            relayed = RelayAtOnce(lane, self, exchange, address)
            relayed.send(self.relay, target, headers, bytes(exchange.body))
        return True

    async def _refuse_known(self, address: str, route_path: str) -> None:
        """429 for an address its upstream refused on this route, until the ``Retry-After`` it
        gave passes: nothing is read, checked or forwarded, and the answer waits a little."""
        left = self.refusals.remaining(f"{address} {route_path}")
        if left is not None:
            await asyncio.sleep(min(REFUSAL_DELAY_SECONDS, left))
            left = max(0.0, left - REFUSAL_DELAY_SECONDS)
            retry_after = max(1, math.ceil(left))
            raise TooManyRequestsError(
                "Too many requests to this route from this address; retry later.",
                headers={"Retry-After": str(retry_after)},
                extra={"retry_after": retry_after},
            )

    async def _body(self, receive: Receive) -> bytes:
        try:
            async with asyncio.timeout(self.body_timeout):
                return await _read_body(receive, self.max_body_bytes)
        except TimeoutError:
            # The rest of a late body may still be on its way: the connection is not reusable.
            raise RequestTimeoutError(
                f"The request body did not arrive within {self.body_timeout:g} seconds.",
                headers={"Connection": "close"},
            ) from None

    async def _forward(self, scope: HTTPScope, receive: Receive, send: Send, address: str) -> None:
        method = scope["method"]
        path = scope["path"]
        route = match_route(method, path)
        if route.limited_per_address:
            await self._refuse_known(address, route.path)

        authorization: bytes | None = None
        content_length = -1
        chunked = False
        for name, value in scope["headers"]:
            if name == b"authorization":
                # Two Authorization headers are never honest; refuse rather than pick one.
                authorization = value if authorization is None else b"?"
            elif name == b"content-length":
                content_length = int(value) if value.isdigit() else self.max_body_bytes + 1
            elif name == b"transfer-encoding":
                chunked = True
        if content_length > self.max_body_bytes:
            raise ContentTooLargeError(_BODY_TOO_LARGE)
        if chunked and content_length >= 0:
            # Two framings: which one a server believes is how requests get smuggled.
            raise BadRequestError("Content-Length and Transfer-Encoding must not be combined.")

        request_id = (current_request_id() or "").encode()
        identity = None
        if route.needs_token:
            identity = await self.token_checker.identity(authorization, request_id)

        headers = request_headers(
            scope["headers"],
            identity=identity,
            internal_token=self.internal_token,
            client_address=address.encode(),
            request_id=request_id,
        )
        content: bytes | None = None
        if content_length > 0 or chunked:
            try:
                content = await self._body(receive)
            except _ClientGoneError:
                return

        upstream = self.upstreams[route.upstream]
        target = _target(route, path, scope)
        if route.relayed and self.relay is not None and content is not None and content_length >= 0:
            answer = await self.relay.deliver(target, headers, content)
            await send(
                {
                    "type": "http.response.start",
                    "status": answer.status,
                    "headers": response_headers(answer.headers, lowered=True),
                }
            )
            await send({"type": "http.response.body", "body": answer.body, "more_body": False})
            return
        response = await upstream.send(
            method, target, headers, content, content_length=content_length >= 0
        )
        if route.limited_per_address and response.status == 429:
            seconds = _retry_after_seconds(response.headers)
            if seconds is not None:
                self.refusals.remember(f"{address} {route.path}", seconds)
        await self.relay_answer(send, response, upstream.name)
        if route.revokes_token and response.status < 300:
            self.token_checker.forget(authorization)

    async def relay_answer(self, send: Send, response: UpstreamResponse, upstream: str) -> None:
        """An upstream's answer to the client, its body streamed as it comes (a small one that
        came with its head in one message); the connection goes back to its pool after it."""
        try:
            await send(
                {
                    "type": "http.response.start",
                    "status": response.status,
                    "headers": response_headers(response.headers, lowered=True),
                }
            )
            body = response.whole_body()
            if body is not None:  # arrived with the head: one message, no async generator
                await send({"type": "http.response.body", "body": body, "more_body": False})
            else:
                ended = False
                async for chunk in response.stream():
                    # The last chunk ends the answer itself: a small answer is one body message.
                    ended = response.exhausted
                    await send(
                        {"type": "http.response.body", "body": chunk, "more_body": not ended}
                    )
                if not ended:
                    await send({"type": "http.response.body", "body": b"", "more_body": False})
        except UpstreamError as exc:
            # Headers are out: all that is left is to cut the connection short.
            logger.warning(
                "upstream body cut", extra={"upstream": upstream, "error": type(exc).__name__}
            )
        finally:
            response.close()
