"""The forwarding itself: one raw ASGI handler behind the route table.

It works on ASGI header pairs and httpx's transport directly: no Litestar request or response
objects and no httpx client layer (whose cookie jar would carry one user's ``Set-Cookie`` into the
next user's request), so the per-request work is the route lookup, the token decision, the header
filter and the two streams.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from typing import TYPE_CHECKING, cast

import httpx
from litestar.exceptions import HTTPException
from litestar.types import Empty
from litestar.utils.scope.state import ScopeState

from gateway.headers import request_headers, response_headers
from gateway.routes import match_route
from gateway.token_check import TokenChecker
from shared import BadGatewayError, GatewayTimeoutError, current_request_id, get_logger

if TYPE_CHECKING:
    from litestar.types import HTTPScope, Receive, ReceiveMessage, Scope, Send

__all__ = ["BodyTooLargeError", "Proxy", "Upstream"]

logger = get_logger("gateway.proxy")


class BodyTooLargeError(HTTPException):
    status_code = 413
    detail = "The request body is larger than this gateway accepts."


class _ClientGoneError(Exception):
    """The client disconnected while its request body was being forwarded."""


class Upstream:
    """One private service: its base URL and the gateway's connection pool to it."""

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
        self.timeouts = {
            "connect": connect_timeout,
            "read": timeout,
            "write": timeout,
            "pool": connect_timeout,
        }
        self.max_connections = max_connections
        self._transport: httpx.AsyncHTTPTransport | None = None

    def open(self) -> None:
        """Create the connection pool (from the app's lifespan; connections open on demand)."""
        self._transport = httpx.AsyncHTTPTransport(
            limits=httpx.Limits(
                max_connections=self.max_connections,
                max_keepalive_connections=self.max_connections,
            ),
            retries=0,
        )

    @property
    def transport(self) -> httpx.AsyncHTTPTransport:
        if self._transport is None:
            raise RuntimeError(f"the {self.name} connection pool is not open")
        return self._transport

    async def send(self, request: httpx.Request) -> httpx.Response:
        """The upstream's answer, its body not read yet.

        Raises:
            BadGatewayError: refused, reset, or not speaking HTTP.
            GatewayTimeoutError: no connection or no answer in time.
        """
        try:
            return await self.transport.handle_async_request(request)
        except httpx.TimeoutException:
            logger.warning("upstream timeout", extra={"upstream": self.name})
            raise GatewayTimeoutError(f"The {self.name} service did not answer in time.") from None
        except httpx.TransportError as exc:
            logger.warning(
                "upstream unreachable", extra={"upstream": self.name, "error": type(exc).__name__}
            )
            raise BadGatewayError(f"The {self.name} service could not be reached.") from None

    async def healthy(self) -> None:
        """For ``/readyz``: raises unless the service answers its ``/healthz`` with 200."""
        response = await self.send(
            httpx.Request("GET", f"{self.base_url}/healthz", extensions={"timeout": self.timeouts})
        )
        await response.aread()
        await response.aclose()
        if response.status_code != 200:
            raise RuntimeError(f"{self.name} /healthz answered {response.status_code}")

    async def aclose(self) -> None:
        if self._transport is not None:
            await self._transport.aclose()
            self._transport = None


async def _request_body(
    first: ReceiveMessage, receive: Receive, limit: int
) -> AsyncIterator[bytes]:
    """The client's body as it arrives, cut off past ``limit`` bytes."""
    message = first
    received = 0
    while True:
        if message["type"] == "http.disconnect":
            raise _ClientGoneError
        chunk = cast("bytes", message.get("body", b""))
        received += len(chunk)
        if received > limit:
            raise BodyTooLargeError
        if chunk:
            yield chunk
        if not message.get("more_body", False):
            return
        message = await receive()


class Proxy:
    """The ASGI app mounted at ``/api/v1`` and ``/webhooks/stripe``."""

    def __init__(
        self,
        upstreams: dict[str, Upstream],
        token_checker: TokenChecker,
        *,
        internal_token: str,
        max_body_bytes: int,
    ) -> None:
        self.upstreams = upstreams
        self.token_checker = token_checker
        self.internal_token = internal_token.encode()
        self.max_body_bytes = max_body_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        scope = cast("HTTPScope", scope)
        method = scope["method"]
        raw_path: bytes = scope.get("raw_path") or scope["path"].encode()
        path = raw_path.decode("latin-1")
        # The mount left only the tail in scope["path"] (and the metrics middleware cached a URL
        # from it); problem details must name the public path.
        scope["path"] = path
        ScopeState.from_scope(scope).url = Empty
        route = match_route(method, path)

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
            raise BodyTooLargeError

        request_id = (current_request_id() or "").encode()
        identity = None
        if route.needs_token:
            identity = await self.token_checker.identity(authorization, request_id)

        client = scope.get("client")
        headers = request_headers(
            cast("Sequence[tuple[bytes, bytes]]", scope["headers"]),
            identity=identity,
            internal_token=self.internal_token,
            client_address=client[0].encode() if client else b"",
            request_id=request_id,
        )
        content: bytes | AsyncIterator[bytes] | None = None
        if content_length > 0 or chunked:
            first = await receive()
            if first["type"] == "http.request" and not first.get("more_body", False):
                content = first.get("body", b"")
                if len(content) > self.max_body_bytes:
                    raise BodyTooLargeError
            else:
                content = _request_body(first, receive, self.max_body_bytes)

        upstream = self.upstreams[route.upstream]
        query: bytes = scope.get("query_string", b"")
        target = upstream.base_url + route.upstream_path(path)
        if query:
            target += "?" + query.decode("latin-1")
        request = httpx.Request(
            method,
            target,
            headers=headers,
            content=content,
            extensions={"timeout": upstream.timeouts},
        )
        try:
            response = await upstream.send(request)
        except _ClientGoneError:
            return
        try:
            await send(
                {
                    "type": "http.response.start",
                    "status": response.status_code,
                    "headers": response_headers(response.headers.raw),
                }
            )
            async for chunk in response.aiter_raw():
                await send({"type": "http.response.body", "body": chunk, "more_body": True})
            await send({"type": "http.response.body", "body": b"", "more_body": False})
        except httpx.TransportError as exc:
            # Headers are out: all that is left is to cut the connection short.
            logger.warning(
                "upstream body cut", extra={"upstream": upstream.name, "error": type(exc).__name__}
            )
        finally:
            await response.aclose()
        if route.revokes_token and response.status_code < 300:
            self.token_checker.forget(authorization)
