"""A lean HTTP/1.1 client: a keep-alive connection pool per origin (``host:port``, TLS or not),
answers parsed by httptools (the parser uvicorn uses), bodies streamed both ways.

httpx's transport cost several times the rest of the work on the paths that use this instead
(h11, anyio, the pool's bookkeeping; docs/benchmarks.md): the gateway's forwarding and token
check to the private services, and facturation's requests to Stripe (``StripeHttpClient`` under
the Stripe SDK). Only what they need is here: no redirects, no cookies, no decoding, no proxies.

UpstreamError                 the server (the "upstream") gave no usable answer
├── UpstreamConnectError      refused, unreachable, TLS refused (the gateway answers 502)
├── UpstreamTimeoutError      no connection, no free connection or no answer in time (504)
└── UpstreamProtocolError     reset, closed early or not HTTP (502)
"""

from __future__ import annotations

import asyncio
import ssl
import time
from collections import deque
from collections.abc import AsyncIterator, Callable, Sequence
from typing import cast

import httptools

from shared._coalesce import CoalescingTransport

__all__ = [
    "ConnectionPool",
    "UpstreamConnectError",
    "UpstreamError",
    "UpstreamProtocolError",
    "UpstreamResponse",
    "UpstreamTimeoutError",
]

Header = tuple[bytes, bytes]
_HIGH_WATER = 256 * 1024
_LOW_WATER = 64 * 1024
_IDEMPOTENT = frozenset({"GET", "HEAD", "OPTIONS"})


class UpstreamError(Exception):
    pass


class UpstreamConnectError(UpstreamError):
    pass


class UpstreamTimeoutError(UpstreamError):
    pass


class UpstreamProtocolError(UpstreamError):
    pass


class _Connection(asyncio.Protocol):
    """One keep-alive connection; it carries one exchange at a time."""

    __slots__ = (
        "buffered",
        "chunks",
        "closed",
        "deadline",
        "done",
        "drain",
        "error",
        "framed",
        "got_bytes",
        "head",
        "headers",
        "headers_done",
        "idle_since",
        "keep_alive",
        "listener",
        "loop",
        "parser",
        "reading_paused",
        "reused",
        "status",
        "timer",
        "timer_at",
        "transport",
        "waiter",
        "writing_paused",
    )

    def __init__(self) -> None:
        self.loop = asyncio.get_running_loop()  # created by loop.create_connection
        self.transport: asyncio.Transport | None = None
        self.closed = False
        self.idle_since = 0.0
        self.reused = False
        # One parser for the connection's life: it starts over by itself after each complete
        # answer, and a connection whose answer was not complete is never reused.
        self.parser = httptools.HttpResponseParser(self)
        # The read deadline: one timer per connection, moved only when it fires too early or
        # a shorter wait comes (see wait).
        self.deadline = 0.0
        self.timer: asyncio.TimerHandle | None = None
        self.timer_at = 0.0
        self.begin(head=False)
        self.done = True  # no exchange yet: bytes now are unasked (see data_received)

    # -- exchange --------------------------------------------------------------------------
    def begin(self, *, head: bool) -> None:
        """Ready for the next exchange (``head``: a ``HEAD`` request's answer has no body)."""
        self.head = head
        self.status = 0
        self.headers: list[Header] = []
        self.framed = False
        self.got_bytes = False
        self.headers_done = False
        self.done = False
        self.keep_alive = False
        self.error: UpstreamError | None = None
        self.chunks: deque[bytes] = deque()
        self.buffered = 0
        self.reading_paused = False
        self.waiter: asyncio.Future[None] | None = None
        self.drain: asyncio.Future[None] | None = None
        self.writing_paused = False
        # Called instead of waking a waiter, once per read and on an error (see watch).
        self.listener: Callable[[], None] | None = None

    @property
    def reusable(self) -> bool:
        return self.done and self.keep_alive and not self.closed and not self.head

    async def wait(self, seconds: float) -> None:
        """Until the answer moves on (head, body, end or error), at most ``seconds``.

        Raises:
            UpstreamTimeoutError: nothing came in time.
        """
        # A timer per wait (call_later, then cancel) cost more than the rest of the wait: the
        # connection's one timer is re-armed only when it fires before the deadline (which then
        # moved on) or when this wait ends before the timer would fire.
        loop = self.loop
        self.waiter = waiter = loop.create_future()
        self.deadline = deadline = loop.time() + seconds
        if self.timer is None or self.timer_at > deadline:
            self._arm(deadline)
        await waiter

    def watch(self, listener: Callable[[], None], seconds: float) -> None:
        """Call ``listener`` (no waiter, no task) after each read that moved the answer on and
        on an error; an answer whose head has not come within ``seconds`` fails with
        :class:`UpstreamTimeoutError`. Until ``listener`` is set back to None (then
        :meth:`wait` works again)."""
        self.listener = listener
        self.deadline = deadline = self.loop.time() + seconds
        if self.timer is None or self.timer_at > deadline:
            self._arm(deadline)

    def _arm(self, at: float) -> None:
        if self.timer is not None:
            self.timer.cancel()
        self.timer_at = at
        self.timer = self.loop.call_at(at, self._check_deadline)

    def _check_deadline(self) -> None:
        self.timer = None
        waiter = self.waiter
        if self.listener is not None:
            if self.headers_done or self.error is not None:
                return  # the listener has what it waited for
        elif waiter is None or waiter.done():
            return  # nothing waits: the next wait arms the timer again
        if self.loop.time() < self.deadline:
            self._arm(self.deadline)
        elif waiter is None:  # a listener's
            self._fail(UpstreamTimeoutError("no answer in time"))
        else:
            waiter.set_exception(UpstreamTimeoutError("no answer in time"))

    def _wake(self) -> None:
        if self.listener is None and self.waiter is not None and not self.waiter.done():
            self.waiter.set_result(None)

    def write(self, data: bytes) -> None:
        if self.closed or self.transport is None:
            raise UpstreamProtocolError("connection closed while sending")
        self.transport.write(data)

    async def drained(self) -> None:
        if self.writing_paused:
            self.drain = self.loop.create_future()
            await self.drain

    def take(self) -> bytes | None:
        if not self.chunks:
            return None
        chunk = self.chunks.popleft()
        self.buffered -= len(chunk)
        if self.reading_paused and self.buffered < _LOW_WATER and self.transport is not None:
            self.reading_paused = False
            self.transport.resume_reading()
        return chunk

    def close(self) -> None:
        self.closed = True
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None
        if self.transport is not None:
            self.transport.close()

    def _fail(self, error: UpstreamError) -> None:
        if self.error is None and not self.done:
            self.error = error
        if self.listener is not None:
            self.listener()
        else:
            self._wake()

    # -- asyncio.Protocol --------------------------------------------------------------------
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # A request leaves at the end of the loop turn, beside the others written in it.
        coalescing = CoalescingTransport(cast("asyncio.Transport", transport), self.loop)
        self.transport = cast("asyncio.Transport", coalescing)

    def data_received(self, data: bytes) -> None:
        if self.done:
            # Bytes nobody asked for (a server's timeout notice on an idle connection): the
            # connection can no longer tell its next answer apart, so it is not reused.
            self.close()
            return
        self.got_bytes = True
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserError as exc:
            self._fail(UpstreamProtocolError(f"malformed answer: {exc}"))
            self.close()
            return
        if self.listener is not None:
            self.listener()

    def eof_received(self) -> bool:
        return False

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        if self.headers_done and not self.framed and not self.done:
            self.done = True  # a body delimited by the end of the connection
        self._fail(UpstreamProtocolError("connection closed by the upstream"))
        if self.drain is not None and not self.drain.done():
            self.drain.set_result(None)

    def pause_writing(self) -> None:
        self.writing_paused = True

    def resume_writing(self) -> None:
        self.writing_paused = False
        if self.drain is not None and not self.drain.done():
            self.drain.set_result(None)

    # -- httptools callbacks ---------------------------------------------------------------
    def on_header(self, name: bytes, value: bytes) -> None:
        lowered = name.lower()
        if lowered in (b"content-length", b"transfer-encoding"):
            self.framed = True
        self.headers.append((lowered, value))

    def on_headers_complete(self) -> None:
        self.status = self.parser.get_status_code()
        self.headers_done = True
        if self.head:
            # httptools cannot be told a HEAD answer has no body: it ends here and its
            # connection is not reused (see reusable).
            self.done = True
        if self.waiter is not None:  # (none while a listener follows the answer)
            self._wake()

    def on_body(self, body: bytes) -> None:
        self.chunks.append(body)
        self.buffered += len(body)
        if self.buffered > _HIGH_WATER and not self.reading_paused and self.transport is not None:
            self.reading_paused = True
            self.transport.pause_reading()
        if self.waiter is not None:  # (none while a listener follows the answer)
            self._wake()

    def on_message_complete(self) -> None:
        # Read here: the parser forgets it once the message is over.
        self.keep_alive = self.parser.should_keep_alive()
        self.done = True
        if self.waiter is not None:  # (none while a listener follows the answer)
            self._wake()


class UpstreamResponse:
    """Status and headers (names lower-cased) of an answer whose body is still to be read."""

    __slots__ = ("_connection", "_pool", "_released", "headers", "status", "timeout")

    def __init__(self, pool: ConnectionPool, connection: _Connection, timeout: float) -> None:
        self._pool = pool
        self._connection = connection
        self._released = False
        self.status = connection.status
        self.headers = connection.headers
        self.timeout = timeout

    @property
    def exhausted(self) -> bool:
        """The whole body has been taken: the chunk just streamed was the last one."""
        connection = self._connection
        return connection.done and not connection.chunks

    def whole_body(self) -> bytes | None:
        """The whole body if it has already arrived and is small (at most the low-water mark),
        taken at once; else None and nothing is taken (read it with :meth:`stream`). Most
        answers arrive with their head: this spares them an async generator."""
        connection = self._connection
        if not connection.done or connection.buffered > _LOW_WATER:
            return None
        chunks = connection.chunks
        if not chunks:
            return b""
        body = chunks.popleft() if len(chunks) == 1 else b"".join(chunks)
        chunks.clear()
        connection.buffered = 0
        if connection.reading_paused and connection.transport is not None:
            connection.reading_paused = False
            connection.transport.resume_reading()
        return body

    async def stream(self) -> AsyncIterator[bytes]:
        connection = self._connection
        try:
            while True:
                chunk = connection.take()
                if chunk is not None:
                    yield chunk
                    continue
                if connection.done:
                    break
                if connection.error is not None:
                    raise connection.error
                await connection.wait(self.timeout)
        finally:
            self.close()

    async def read(self) -> bytes:
        try:
            return b"".join([chunk async for chunk in self.stream()])
        finally:
            self.close()

    def close(self) -> None:
        """Hand the connection back if the exchange is complete, else drop it."""
        if not self._released:
            self._released = True
            self._pool.release(self._connection)


class _Slots:
    """At most ``limit`` exchanges at once; the others wait in line. (``asyncio.Semaphore``
    would do, but it costs a coroutine and a scan of its waiters on every acquire, even with a
    slot free, which on the hot path is every time.)

    A freed slot passes straight to the first live waiter, so ``free > 0`` means nobody waits.
    """

    def __init__(self, limit: int) -> None:
        self.free = limit
        self._line: deque[asyncio.Future[None]] = deque()

    def take_now(self) -> bool:
        if self.free:
            self.free -= 1
            return True
        return False

    async def take(self, seconds: float) -> None:
        """Wait for a slot.

        Raises:
            UpstreamTimeoutError: none was freed within ``timeout`` seconds.
        """
        turn = asyncio.get_running_loop().create_future()
        self._line.append(turn)
        try:
            await asyncio.wait_for(turn, seconds)
        except TimeoutError:
            raise UpstreamTimeoutError("no free connection in time") from None
        except BaseException:
            if turn.done() and not turn.cancelled():
                self.give_back()  # handed a slot just as this waiter gave up
            raise

    def give_back(self) -> None:
        while self._line:
            turn = self._line.popleft()
            if not turn.done():  # (a waiter that timed out or was cancelled left its turn done)
                turn.set_result(None)
                return
        self.free += 1


def _authority(host: str, port: int, *, secure: bool) -> bytes:
    """The ``Host`` header's value: the port left out when it is the scheme's default, an IPv6
    literal in brackets."""
    name = f"[{host}]" if ":" in host else host
    return (name if port == (443 if secure else 80) else f"{name}:{port}").encode("idna")


class ConnectionPool:
    """Keep-alive connections to one ``host:port``, most recently used first.

    Args:
        max_connections: exchanges at once; the others wait in line.
        connect_timeout: for a new connection (TLS handshake included).
        ssl_context: TLS with this context (the certificate checked for ``host``), else plain.
        max_idle: idle connections kept for reuse (by default as many as ``max_connections``).
        idle_seconds: an idle connection older than this is closed rather than reused.
        queue_timeout: how long a request waits for a free connection (by default
            ``connect_timeout``).
        retry_any_method: a request that met a kept-alive connection the server had just
            closed (nothing came back) is sent again on another whatever its method, not only
            when idempotent: for callers whose requests carry idempotency keys.
    """

    def __init__(
        self,
        host: str,
        port: int,
        *,
        max_connections: int,
        connect_timeout: float,
        ssl_context: ssl.SSLContext | None = None,
        max_idle: int | None = None,
        idle_seconds: float = 4.0,
        queue_timeout: float | None = None,
        retry_any_method: bool = False,
    ) -> None:
        self.host = host
        self.port = port
        self.ssl_context = ssl_context
        self.authority = _authority(host, port, secure=ssl_context is not None)
        self.connect_timeout = connect_timeout
        self.queue_timeout = queue_timeout
        self.max_idle = max_connections if max_idle is None else max_idle
        # Below uvicorn's 5 s keep-alive: we drop an idle connection before the server does.
        self.idle_seconds = idle_seconds
        self.retry_any_method = retry_any_method
        self._idle: list[_Connection] = []
        self._slots = _Slots(max_connections)

    async def _connect(self) -> _Connection:
        loop = asyncio.get_running_loop()
        secure = self.ssl_context is not None
        try:
            _, connection = await asyncio.wait_for(
                loop.create_connection(
                    _Connection,
                    self.host,
                    self.port,
                    ssl=self.ssl_context,
                    server_hostname=self.host if secure else None,
                ),
                self.connect_timeout,
            )
        except TimeoutError:
            raise UpstreamTimeoutError("connect timeout") from None
        except OSError as exc:  # (ssl.SSLError included)
            raise UpstreamConnectError(str(exc) or type(exc).__name__) from None
        return connection

    def _reuse(self) -> _Connection | None:
        """The most recently used idle connection, unless it has idled too long."""
        now = time.monotonic()
        while self._idle:
            connection = self._idle.pop()
            if not connection.closed and now - connection.idle_since < self.idle_seconds:
                connection.reused = True
                return connection
            connection.close()
        return None

    def close(self) -> None:
        """Close the idle connections (at shutdown; answers in flight close theirs)."""
        while self._idle:
            self._idle.pop().close()

    def release(self, connection: _Connection) -> None:
        self._slots.give_back()
        if connection.reusable and len(self._idle) < self.max_idle:
            connection.idle_since = time.monotonic()
            self._idle.append(connection)
        else:
            connection.close()

    def ready_connection(self) -> _Connection | None:
        """A free slot and an idle kept-alive connection, taken at once, or None and nothing
        taken: for a request sent without waiting (:meth:`send_head`). The slot is given back
        with :meth:`release`, through the answer's :meth:`UpstreamResponse.close`."""
        if not self._slots.take_now():
            return None
        connection = self._reuse()
        if connection is None:
            self._slots.give_back()
        return connection

    def send_head(
        self, connection: _Connection, method: str, target: str, headers: Sequence[Header]
    ) -> None:
        """Write a request without a body on ``connection`` (from :meth:`ready_connection`);
        its answer is followed with :meth:`_Connection.watch`."""
        connection.begin(head=method == "HEAD")
        connection.write(self._head(method, target, headers, None, content_length=False))

    async def request(
        self,
        method: str,
        target: str,
        headers: Sequence[Header],
        body: bytes | AsyncIterator[bytes] | None,
        *,
        read_timeout: float,
        content_length: bool,
    ) -> UpstreamResponse:
        """Send one request and wait for the answer's status and headers.

        Args:
            target: path and query, as sent.
            headers: without ``Host`` and framing other than a client's ``Content-Length``.
            content_length: ``headers`` already carry the body's ``Content-Length``.
        """
        if not self._slots.take_now():
            queue_timeout = self.queue_timeout
            await self._slots.take(self.connect_timeout if queue_timeout is None else queue_timeout)
        try:
            for attempt in (1, 2):
                connection = self._reuse() or await self._connect()
                try:
                    await self._exchange(
                        connection, method, target, headers, body, read_timeout, content_length
                    )
                except UpstreamProtocolError:
                    # A kept-alive connection the server had just closed: safe to retry only
                    # when nothing came back and the request can be sent again.
                    connection.close()
                    retry = (
                        attempt == 1
                        and connection.reused
                        and not connection.got_bytes
                        and (self.retry_any_method or method in _IDEMPOTENT)
                        and not isinstance(body, AsyncIterator)
                    )
                    if not retry:
                        raise
                    continue
                except BaseException:
                    connection.close()
                    raise
                return UpstreamResponse(self, connection, read_timeout)
            raise AssertionError("unreachable")  # pragma: no cover
        except BaseException:
            self._slots.give_back()
            raise

    async def _exchange(
        self,
        connection: _Connection,
        method: str,
        target: str,
        headers: Sequence[Header],
        body: bytes | AsyncIterator[bytes] | None,
        read_timeout: float,
        content_length: bool,
    ) -> None:
        connection.begin(head=method == "HEAD")
        connection.write(self._head(method, target, headers, body, content_length=content_length))
        if body is not None and not isinstance(body, bytes):
            async for chunk in body:
                if content_length:
                    connection.write(chunk)
                else:
                    connection.write(b"%x\r\n%b\r\n" % (len(chunk), chunk))
                await connection.drained()
                if connection.error is not None:
                    raise connection.error
            if not content_length:
                connection.write(b"0\r\n\r\n")
        while not connection.headers_done:
            if connection.error is not None:
                raise connection.error
            await connection.wait(read_timeout)

    def _head(
        self,
        method: str,
        target: str,
        headers: Sequence[Header],
        body: bytes | AsyncIterator[bytes] | None,
        *,
        content_length: bool,
    ) -> bytes:
        """The request line and headers, and a ``bytes`` body behind them."""
        lines = [f"{method} {target} HTTP/1.1\r\n".encode("latin-1"), b"host: ", self.authority]
        for name, value in headers:
            lines += (b"\r\n", name, b": ", value)
        # (No isinstance against the AsyncIterator ABC: it is slow, and this runs per request.)
        if isinstance(body, bytes):
            if not content_length:
                lines += (b"\r\ncontent-length: ", str(len(body)).encode())
            lines += (b"\r\n\r\n", body)
        else:
            if body is not None and not content_length:
                lines.append(b"\r\ntransfer-encoding: chunked")
            lines.append(b"\r\n\r\n")
        return b"".join(lines)
