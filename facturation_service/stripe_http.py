"""What carries the Stripe SDK's requests: a lean HTTP/1.1 client with keep-alive connections
per origin, answers parsed by httptools (the parser uvicorn uses), TLS from the SDK's own CA
bundle.

stripe-python's ``HTTPXClient`` cost about 1 ms of CPU per request on the checkout path (httpx's
request and response models, httpcore's pool, h11, anyio's cancel scopes, the head and the body
written as two sends): most of facturation's CPU per Checkout Session (docs/benchmarks.md).
Stripe's requests are small and whole (a form body out, a JSON body back), so this sends each in
one write and reads each answer into memory. The SDK keeps everything above the wire: form
encoding, headers, idempotency keys, retries (it retries every :class:`stripe.APIConnectionError`
raised here, with the same idempotency key), errors.

It speaks to Stripe directly: with ``HTTPS_PROXY``, ``HTTP_PROXY`` or ``ALL_PROXY`` set,
:func:`stripe_http_client` keeps ``stripe.HTTPXClient``, which honours them.

Failures reach the SDK as ``stripe.APIConnectionError`` caused by:

StripeConnectionError          no usable answer (refused, reset, closed early, not HTTP)
└── StripeTimeoutError         no connection, no free connection or no whole answer in time
"""

from __future__ import annotations

import asyncio
import os
import ssl
import textwrap
import time
from collections.abc import AsyncIterator, Iterator, Mapping
from typing import Any, NoReturn, cast
from urllib.parse import urlsplit

import httptools
import httpx
import stripe

__all__ = [
    "StripeConnectionError",
    "StripeHttpClient",
    "StripeTimeoutError",
    "stripe_http_client",
]

_PROXY_VARIABLES = (
    "HTTPS_PROXY",
    "HTTP_PROXY",
    "ALL_PROXY",
    "https_proxy",
    "http_proxy",
    "all_proxy",
)


class StripeConnectionError(Exception):
    pass


class StripeTimeoutError(StripeConnectionError, TimeoutError):
    pass


def stripe_http_client(timeout_seconds: float) -> stripe.HTTPClient:
    """The app's client to Stripe: :class:`StripeHttpClient`, or stripe's httpx one when a proxy
    is configured in the environment (httpx reads it; this client does not)."""
    if any(os.environ.get(name) for name in _PROXY_VARIABLES):
        return stripe.HTTPXClient(
            timeout=httpx.Timeout(timeout_seconds, connect=min(timeout_seconds, 5.0))
        )
    return StripeHttpClient(timeout_seconds=timeout_seconds)


class _Headers(Mapping[str, str]):
    """An answer's headers, looked up case-insensitively (the SDK asks for ``Request-Id`` and
    ``request-id``); a repeated header's values joined by ``, `` as httpx does."""

    __slots__ = ("_values",)

    def __init__(self, values: dict[str, str]) -> None:
        self._values = values

    def __getitem__(self, name: str) -> str:
        return self._values[name.lower()]

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and name.lower() in self._values

    def __iter__(self) -> Iterator[str]:
        return iter(self._values)

    def __len__(self) -> int:
        return len(self._values)


def _expire(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_exception(StripeTimeoutError("no answer in time"))


class _Connection(asyncio.Protocol):
    """One keep-alive connection; one exchange at a time, its answer kept whole."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.closed = False
        self.idle_since = 0.0
        self.parser = httptools.HttpResponseParser(self)
        self.waiter: asyncio.Future[None] | None = None
        self._reset()

    def _reset(self) -> None:
        self.got_bytes = False
        self.framed = False
        self.headers_done = False
        self.done = False
        self.keep_alive = False
        self.status = 0
        self.headers: dict[str, str] = {}
        self.body: list[bytes] = []
        self.error: StripeConnectionError | None = None

    def send(self, data: bytes, waiter: asyncio.Future[None]) -> None:
        """Start an exchange: ``waiter`` is done once the whole answer is in, or it failed."""
        if self.closed or self.transport is None:
            raise StripeConnectionError("connection closed before sending")
        self._reset()
        self.waiter = waiter
        self.transport.write(data)

    @property
    def reusable(self) -> bool:
        return self.done and self.keep_alive and not self.closed

    def close(self) -> None:
        self.closed = True
        if self.transport is not None:
            self.transport.close()

    def _finish(self, error: StripeConnectionError | None = None) -> None:
        if error is not None and self.error is None and not self.done:
            self.error = error
        waiter = self.waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    # -- asyncio.Protocol --------------------------------------------------------------------
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast("asyncio.Transport", transport)

    def data_received(self, data: bytes) -> None:
        if self.waiter is None or self.waiter.done():
            # Bytes nobody asked for (a server's timeout notice on an idle connection): the
            # connection can no longer tell its next answer apart, so it is not reused.
            self.close()
            return
        self.got_bytes = True
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserError as exc:
            self._finish(StripeConnectionError(f"malformed answer: {exc}"))
            self.close()

    def eof_received(self) -> bool:
        return False

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        if self.headers_done and not self.framed and not self.done:
            self.done = True  # a body delimited by the end of the connection
        self._finish(StripeConnectionError("connection closed by Stripe"))

    # -- httptools callbacks ---------------------------------------------------------------
    def on_header(self, name: bytes, value: bytes) -> None:
        key = name.decode("latin-1").lower()
        if key in ("content-length", "transfer-encoding"):
            self.framed = True
        text = value.decode("latin-1")
        known = self.headers.get(key)
        self.headers[key] = text if known is None else f"{known}, {text}"

    def on_headers_complete(self) -> None:
        self.status = self.parser.get_status_code()
        self.headers_done = True

    def on_body(self, body: bytes) -> None:
        self.body.append(body)

    def on_message_complete(self) -> None:
        # Read here: the parser forgets it once the message is over.
        self.keep_alive = self.parser.should_keep_alive()
        self.done = True
        self._finish()


class _Origin:
    """Keep-alive connections to one ``scheme://host:port``, most recently used first."""

    def __init__(
        self,
        host: str,
        port: int,
        ssl_context: ssl.SSLContext | None,
        *,
        max_connections: int,
        max_idle: int,
        idle_seconds: float,
    ) -> None:
        self.host = host
        self.port = port
        self.ssl_context = ssl_context
        default_port = 443 if ssl_context is not None else 80
        name = f"[{host}]" if ":" in host else host  # an IPv6 literal
        self.authority = (name if port == default_port else f"{name}:{port}").encode("idna")
        self.max_idle = max_idle
        self.idle_seconds = idle_seconds
        self.idle: list[_Connection] = []
        self.slots = asyncio.Semaphore(max_connections)

    async def connect(self, seconds: float) -> _Connection:
        loop = asyncio.get_running_loop()
        try:
            _, connection = await asyncio.wait_for(
                loop.create_connection(
                    _Connection,
                    self.host,
                    self.port,
                    ssl=self.ssl_context,
                    server_hostname=self.host if self.ssl_context is not None else None,
                ),
                seconds,
            )
        except TimeoutError:
            raise StripeTimeoutError("connect timeout") from None
        except (OSError, ssl.SSLError) as exc:
            raise StripeConnectionError(str(exc) or type(exc).__name__) from exc
        return connection

    def reuse(self) -> _Connection | None:
        now = time.monotonic()
        while self.idle:
            connection = self.idle.pop()
            if not connection.closed and now - connection.idle_since < self.idle_seconds:
                return connection
            connection.close()
        return None

    def release(self, connection: _Connection) -> None:
        if connection.reusable and len(self.idle) < self.max_idle:
            connection.idle_since = time.monotonic()
            self.idle.append(connection)
        else:
            connection.close()

    def close(self) -> None:
        while self.idle:
            self.idle.pop().close()


class StripeHttpClient(stripe.HTTPClient):
    """``stripe.HTTPClient`` for the async calls (the service makes no sync ones)."""

    name = "facturation"

    def __init__(
        self,
        *,
        timeout_seconds: float = 10.0,
        connect_timeout_seconds: float | None = None,
        max_connections: int = 100,
        max_idle_connections: int = 20,
        idle_seconds: float = 4.0,
    ) -> None:
        """Args:
        timeout_seconds: for a whole answer once the request is sent, and to wait for a free
            connection when ``max_connections`` are busy.
        connect_timeout_seconds: for a new connection (TLS included); at most 5 s by default.
        max_connections, max_idle_connections: per origin, as httpx's defaults (100, 20).
        idle_seconds: an idle connection older than this is closed rather than reused (below
            the 5 s keep-alive of uvicorn, which serves the sandbox).
        """
        super().__init__()
        self.timeout = timeout_seconds
        self.connect_timeout = (
            min(timeout_seconds, 5.0)
            if connect_timeout_seconds is None
            else connect_timeout_seconds
        )
        self.max_connections = max_connections
        self.max_idle = max_idle_connections
        self.idle_seconds = idle_seconds
        self._ssl_context: ssl.SSLContext | None = None
        self._origins: dict[tuple[str, str], _Origin] = {}

    def _origin(self, url: str) -> tuple[_Origin, str]:
        """The origin of ``url`` and its request target (path and query)."""
        parts = urlsplit(url)
        key = (parts.scheme, parts.netloc)
        origin = self._origins.get(key)
        if origin is None:
            if parts.scheme not in ("http", "https") or not parts.hostname:
                raise StripeConnectionError(f"not an http(s) URL: {url}")
            secure = parts.scheme == "https"
            if secure and self._ssl_context is None:
                # The bundle the SDK itself verifies Stripe's certificate with.
                self._ssl_context = ssl.create_default_context(cafile=stripe.ca_bundle_path)
            origin = _Origin(
                parts.hostname,
                parts.port or (443 if secure else 80),
                self._ssl_context if secure else None,
                max_connections=self.max_connections,
                max_idle=self.max_idle,
                idle_seconds=self.idle_seconds,
            )
            self._origins[key] = origin
        target = parts.path or "/"
        if parts.query:
            target = f"{target}?{parts.query}"
        return origin, target

    async def request_async(
        self, method: str, url: str, headers: Mapping[str, str], post_data: Any = None
    ) -> tuple[bytes, int, Mapping[str, str]]:
        try:
            return await self._request(method, url, headers, post_data)
        except StripeConnectionError as exc:
            self._handle_request_error(exc)

    async def request_stream_async(
        self, method: str, url: str, headers: Mapping[str, str], post_data: Any = None
    ) -> tuple[AsyncIterator[bytes], int, Mapping[str, str]]:
        """The whole answer, handed over as one chunk (the service streams nothing)."""
        content, status, answer_headers = await self.request_async(method, url, headers, post_data)

        async def chunks() -> AsyncIterator[bytes]:
            yield content

        return chunks(), status, answer_headers

    def _handle_request_error(self, exc: StripeConnectionError) -> NoReturn:
        # The same message and retry decision as stripe's own clients.
        message = (
            textwrap.fill(
                "Unexpected error communicating with Stripe. If this problem persists, let us "
                "know at support@stripe.com."
            )
            + f"\n\n(Network error: A {type(exc).__name__} was raised)"
        )
        raise stripe.APIConnectionError(message, should_retry=True) from exc  # type: ignore[no-untyped-call]

    async def _request(
        self, method: str, url: str, headers: Mapping[str, str], post_data: Any
    ) -> tuple[bytes, int, Mapping[str, str]]:
        origin, target = self._origin(url)
        body = post_data.encode() if isinstance(post_data, str) else bytes(post_data or b"")
        lines = [
            f"{method.upper()} {target} HTTP/1.1\r\nHost: ".encode("latin-1"),
            origin.authority,
        ]
        for name, value in headers.items():
            if "\r" in value or "\n" in value:
                raise StripeConnectionError(f"a line break in the {name} header")
            lines.append(f"\r\n{name}: {value}".encode("latin-1"))
        if body or method.lower() not in ("get", "head", "delete"):
            lines.append(b"\r\nContent-Length: %d" % len(body))
        lines += (b"\r\n\r\n", body)
        request = b"".join(lines)
        slots = origin.slots
        if slots.locked():
            try:
                await asyncio.wait_for(slots.acquire(), self.timeout)
            except TimeoutError:
                raise StripeTimeoutError("no free connection in time") from None
        else:
            await slots.acquire()  # free: returns at once
        try:
            connection = origin.reuse()
            if connection is not None:
                try:
                    return await self._exchange(origin, connection, request)
                except StripeTimeoutError:
                    raise
                except StripeConnectionError:
                    # A kept-alive connection Stripe had just closed, nothing came back: every
                    # request the SDK sends may go again (POSTs carry an idempotency key).
                    if connection.got_bytes:
                        raise
            connection = await origin.connect(self.connect_timeout)
            return await self._exchange(origin, connection, request)
        finally:
            slots.release()

    async def _exchange(
        self, origin: _Origin, connection: _Connection, request: bytes
    ) -> tuple[bytes, int, Mapping[str, str]]:
        loop = asyncio.get_running_loop()
        waiter: asyncio.Future[None] = loop.create_future()
        timer = loop.call_later(self.timeout, _expire, waiter)
        try:
            connection.send(request, waiter)
            await waiter
        except BaseException:
            connection.close()
            raise
        finally:
            timer.cancel()
        if connection.error is not None:
            connection.close()
            raise connection.error
        body = connection.body
        content = body[0] if len(body) == 1 else b"".join(body)
        answer = (content, connection.status, _Headers(connection.headers))
        origin.release(connection)
        return answer

    async def close_async(self) -> None:
        for origin in self._origins.values():
            origin.close()
        self._origins.clear()

    def sleep_async(self, secs: float) -> Any:
        return asyncio.sleep(secs)
