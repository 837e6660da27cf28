"""The services' HTTP/1.1 server protocol: requests a lane takes skip the generic ASGI cycle.

uvicorn's per-request machinery (a request-response cycle object with an ``asyncio.Event``,
an ASGI send that validates every response header with two regular expressions and re-reads
them for framing, the lane's send wrapper on top) cost more CPU than the gateway's proxying
itself, and a good share of facturation's webhook intake. :class:`LaneProtocol` is uvicorn's
httptools protocol (the coalescing one of ``shared._coalesce``) with one change: when a
request's head is complete and the app's :class:`~shared._lane.Lane` (the gateway's proxy lane,
facturation's webhook lane) would take it, it runs a :class:`LaneExchange` instead of uvicorn's
cycle. The exchange calls the lane directly and writes the answer's head and body itself; the
head and a small body leave in one write. A lane may also start an exchange from callbacks alone,
with no task (:meth:`Lane.answer_at_once`: the gateway's ``GET`` whose token decision is cached,
asked once its head is in, and Stripe's deliveries to its relay, asked once the whole body is in
if it came in the read in which the request's turn came; one still arriving runs in a task);
the exchange then offers it :meth:`LaneExchange.answer_whole`, :meth:`LaneExchange.spawn` for
what still needs a task, and :meth:`LaneExchange.run_in_turn` to give the request back.

Everything at the connection level stays uvicorn's: parsing, pipelining (an exchange is queued
like any cycle), keep-alive timeouts, flow control, a malformed request's 400 (written as
problem+json by ``shared._coalesce``), graceful shutdown. Every other request (health, metrics,
the API document, preflights, what the lane leaves to Litestar, ...) takes uvicorn's cycle and
the whole Litestar app, as before. With ``FORWARDED_ALLOW_IPS`` set, uvicorn's proxy-headers
middleware still decides the client address of a request a lane takes (the exchange runs a copy
of it on the scope). Should the app have no lane, anything else wrap it, or a ``root_path`` or a
concurrency limit be configured, every request takes uvicorn's cycle.

What the exchange keeps of the ASGI contract, for the lane: ``receive`` gives the body as it
arrives (``Expect: 100-continue`` answered on the first read, reading resumed for the body),
``send`` takes ``http.response.start`` and ``http.response.body`` messages; an answer without
``Content-Length`` is sent chunked; ``HEAD``, 1xx, 204 and 304 answers carry no body;
``Connection: close`` from the client (or HTTP/1.0 without keep-alive) or on the answer closes
the connection after it. Header names and values come from an upstream's parser or from our own
code; one check on the whole head still refuses a line break inside a header.
"""

from __future__ import annotations

import asyncio
import http
import logging
import time
from collections.abc import Coroutine
from typing import TYPE_CHECKING, Any, cast
from urllib.parse import unquote

import httptools
from litestar import Litestar
from uvicorn.middleware.proxy_headers import ProxyHeadersMiddleware

from shared._coalesce import CoalescingHttpToolsProtocol
from shared._lane import Answer, Lane
from shared._request_id import accept_request_id

if TYPE_CHECKING:
    from litestar.types import HTTPScope, Message, ReceiveMessage, Scope
    from uvicorn.config import Config
    from uvicorn.server import ServerState

__all__ = ["LaneExchange", "LaneProtocol"]

logger = logging.getLogger("shared.lane_protocol")

_NO_BODY_STATUSES = frozenset({204, 304})
_CONTINUE = b"HTTP/1.1 100 Continue\r\n\r\n"
_SERVER_ERROR = b"Internal Server Error"
# Past this size a body is written on its own rather than copied behind the head.
_JOIN_BELOW = 16384


def _status_line(status: int) -> bytes:
    try:
        reason = http.HTTPStatus(status).phrase
    except ValueError:
        reason = ""
    return f"HTTP/1.1 {status} {reason}\r\n".encode("latin-1")


_STATUS_LINES = {status: _status_line(status) for status in range(100, 600)}


def _nothing() -> None:
    pass


class _Signal:
    """``asyncio.Event`` reduced to what an exchange needs: one waiter at a time."""

    __slots__ = ("_loop", "_set", "_waiter")

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self._set = False
        self._waiter: asyncio.Future[None] | None = None

    def set(self) -> None:
        self._set = True
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def clear(self) -> None:
        self._set = False

    async def wait(self) -> None:
        if self._set:
            return
        self._waiter = self._loop.create_future()
        try:
            await self._waiter
        finally:
            self._waiter = None


class LaneExchange(Answer):
    """One request a lane takes, in place of uvicorn's request-response cycle.

    The connection protocol drives it through the same attributes it drives a cycle with:
    ``body``, ``more_body`` and ``message_event`` as the request body arrives, ``disconnected``,
    ``keep_alive`` (cleared at shutdown), ``response_complete``, ``on_response`` and
    ``run_asgi``.
    """

    __slots__ = (
        "_chunked",
        "_expect_continue",
        "_head",
        "_no_body",
        "_remaining",
        "body",
        "disconnected",
        "keep_alive",
        "lane",
        "message_event",
        "more_body",
        "on_response",
        "protocol",
        "request_id",
        "response_complete",
        "scope",
        "started",
        "template",
    )

    def __init__(
        self,
        protocol: LaneProtocol,
        lane: Lane,
        scope: HTTPScope,
        template: str,
        request_id: str,
        *,
        keep_alive: bool,
        expect_continue: bool,
    ) -> None:
        super().__init__()
        self.protocol = protocol
        self.lane = lane
        self.scope = scope
        self.template = template
        self.request_id = request_id
        self.keep_alive = keep_alive
        self._expect_continue = expect_continue
        self.body = bytearray()
        self.more_body = True
        self.message_event = _Signal(protocol.loop)
        self.disconnected = False
        self.response_complete = False
        self.on_response = protocol.on_response_complete
        self.started = 0.0
        """``time.perf_counter()`` when the exchange's turn came."""
        self._head = b""
        self._chunked = False
        self._no_body = False
        self._remaining = 0

    async def run_asgi(self, _app: Any) -> None:
        """Run by the protocol when the exchange's turn comes (pipelined requests wait), or when
        a lane that began answering it at once gives it back: its clock then keeps running."""
        if not self.started:  # pipelined: its turn comes now
            self.started = time.perf_counter()
        try:
            forwarded = self.protocol.forwarded
            if forwarded is not None:  # FORWARDED_ALLOW_IPS: the client a trusted proxy names
                await forwarded(cast("Any", self.scope), _no_receive, _no_send)
            await self.lane.serve(
                cast("Scope", self.scope),
                self.receive,
                self.send,
                self.template,
                self.request_id,
                self,
                self.started,
            )
        except BaseException as exc:
            await self.failed(exc)
        else:
            if not self.disconnected:
                if not self.answered:
                    logger.error("the lane returned without an answer")
                    await self._server_error()
                elif not self.response_complete:
                    logger.error("the lane returned before the end of its answer")
                    self.protocol.transport.close()
        finally:
            self.on_response = _nothing

    async def failed(self, exc: BaseException) -> None:
        """An error the lane did not answer: 500 if the answer has not started, else the
        connection is cut (its client cannot mistake a partial answer for a whole one)."""
        logger.error("unexpected error in the lane", exc_info=exc)
        if not self.answered:
            await self._server_error()
        else:
            self.protocol.transport.close()

    async def _server_error(self) -> None:
        await self.send(
            {
                "type": "http.response.start",
                "status": 500,
                "headers": [
                    (b"content-type", b"text/plain; charset=utf-8"),
                    (b"content-length", str(len(_SERVER_ERROR)).encode()),
                    (b"connection", b"close"),
                ],
            }
        )
        await self.send({"type": "http.response.body", "body": _SERVER_ERROR, "more_body": False})

    # -- the ASGI callables the lane is given -----------------------------------------------------
    async def receive(self) -> ReceiveMessage:
        protocol = self.protocol
        if self._expect_continue:
            self._expect_continue = False
            if not protocol.transport.is_closing():
                protocol.transport.write(_CONTINUE)
        if not self.disconnected and not self.response_complete:
            protocol.flow.resume_reading()
            await self.message_event.wait()
            self.message_event.clear()
        if self.disconnected or self.response_complete:
            return {"type": "http.disconnect"}
        body = bytes(self.body)
        self.body = bytearray()
        return {"type": "http.request", "body": body, "more_body": self.more_body}

    async def send(self, message: Message) -> None:
        flow = self.protocol.flow
        if flow.write_paused and not self.disconnected:
            await flow.drain()
        if self.disconnected:
            return
        kind = message["type"]
        if kind == "http.response.start" and not self.answered:
            self._start(message["status"], message.get("headers", ()))  # type: ignore[typeddict-item]
        elif kind == "http.response.body" and self.answered and not self.response_complete:
            self._body(message.get("body", b""), message.get("more_body", False))  # type: ignore[arg-type]
        else:
            raise RuntimeError(f"unexpected ASGI message {kind!r} at this point of the answer")

    # -- answering from callbacks (Lane.answer_at_once) ---------------------------------------
    def answer_whole(self, status: int, headers: Any, body: bytes) -> None:
        """The whole answer at once, from a callback, as ``send`` would write it from its two
        messages (not while the client's writing is paused: ``send`` waits for that)."""
        if self.disconnected:
            return
        self._start(status, headers)
        self._body(body, more_body=False)

    def spawn(self, work: Coroutine[Any, Any, None]) -> None:
        """Run ``work`` (the rest of an answer begun from callbacks) in a task the server waits
        for at shutdown, as it waits for the exchanges it runs itself."""
        tasks = self.protocol.tasks
        task = self.protocol.loop.create_task(work)
        task.add_done_callback(tasks.discard)
        tasks.add(task)

    def run_in_turn(self) -> None:
        """Leave the exchange to :meth:`run_asgi`, in a task, as any exchange the lane did not
        answer at once (after :meth:`Lane.answer_at_once` began and gave it back)."""
        self.protocol._start_asgi_task(self, self.protocol.app)  # type: ignore[arg-type]

    # -- writing the answer -------------------------------------------------------------------
    def _start(self, status: int, headers: Any) -> None:
        self.status = status
        self.answered = True
        self._expect_continue = False  # answered before the body was asked for: no 100
        lines = [_STATUS_LINES.get(status) or _status_line(status)]
        for name, value in self.protocol.server_state.default_headers:  # Date
            lines += (name, b": ", value, b"\r\n")
        length = -1
        # Names arrive lower-cased: shared.ConnectionPool lowers an upstream's, Litestar and the
        # lanes write their own so.
        for name, value in headers:
            if name == b"content-length":
                length = int(value)
            elif name == b"connection":
                if b"close" in (token.strip() for token in value.lower().split(b",")):
                    self.keep_alive = False
                continue  # written below, once
            elif name == b"x-request-id":
                continue  # ours replaces any other
            lines += (name, b": ", value, b"\r\n")
        lines += (b"x-request-id", b": ", self.request_id.encode(), b"\r\n")
        if not self.keep_alive:
            lines += (b"connection", b": ", b"close", b"\r\n")
        self._no_body = (
            status < 200 or status in _NO_BODY_STATUSES or self.scope["method"] == "HEAD"
        )
        if length < 0 and not self._no_body:
            self._chunked = True
            lines += (b"transfer-encoding", b": ", b"chunked", b"\r\n")
        self._remaining = length
        lines.append(b"\r\n")
        head = b"".join(lines)
        # Each header took four pieces, the status line and the end one each, and each of
        # those lines ends in the one CRLF it was given: any other is a header value or name
        # that would split the answer (or smuggle a second one).
        breaks = 2 + (len(lines) - 2) // 4
        if head.count(b"\n") != breaks or head.count(b"\r") != breaks:
            raise RuntimeError("a response header holds a line break")
        self._head = head

    def _body(self, body: bytes, more_body: bool) -> None:
        if self._no_body:
            body = b""
        elif self._chunked:
            if body:
                body = b"%x\r\n%b\r\n" % (len(body), body)
            if not more_body:
                body += b"0\r\n\r\n"
        else:
            self._remaining -= len(body)
            if self._remaining < 0 or (not more_body and self._remaining):
                raise RuntimeError("the answer's body does not match its Content-Length")
        head = self._head
        transport = self.protocol.transport  # a CoalescingTransport: sent at the turn's end
        if head:
            self._head = b""
            if len(body) < _JOIN_BELOW:
                body = head + body
            else:
                transport.write(head)
        transport.write(body)
        self.seconds = time.perf_counter() - self.started
        if more_body:
            return
        self.response_complete = True
        self.message_event.set()
        if not self.keep_alive:
            transport.close()
        self.on_response()


async def _scope_only(_scope: Any, _receive: Any, _send: Any) -> None:
    """Behind the protocol's copy of uvicorn's proxy-headers middleware: the copy is used for
    its rewrite of the scope's client and scheme only."""


async def _no_receive() -> Any:  # pragma: no cover - never called by that middleware
    raise RuntimeError("not an ASGI app")


async def _no_send(_message: Any) -> None:  # pragma: no cover - never called by that middleware
    raise RuntimeError("not an ASGI app")


def _served_app(config: Config) -> tuple[Litestar, ProxyHeadersMiddleware | None] | None:
    """The Litestar app uvicorn runs, and uvicorn's proxy-headers middleware when it wraps the
    app (``FORWARDED_ALLOW_IPS``); None when the app has no lane in front, anything else wraps
    it or an option changes the scope (``root_path``, a concurrency limit): then every request
    takes uvicorn's cycle."""
    app = config.loaded_app
    forwarded = None
    if isinstance(app, ProxyHeadersMiddleware):
        forwarded = ProxyHeadersMiddleware(_scope_only)
        forwarded.trusted_hosts = app.trusted_hosts
        app = app.app
    if (
        not isinstance(app, Litestar)
        or config.root_path
        or config.limit_concurrency is not None
        or not isinstance(app.asgi_handler, Lane)
    ):
        return None
    return app, forwarded


class LaneProtocol(CoalescingHttpToolsProtocol):
    """uvicorn's httptools protocol (coalescing writes) running the requests the app's lane
    takes as :class:`LaneExchange` objects."""

    def __init__(
        self,
        config: Config,
        server_state: ServerState,
        app_state: dict[str, Any],
        _loop: asyncio.AbstractEventLoop | None = None,
    ) -> None:
        super().__init__(config, server_state, app_state, _loop)
        served = _served_app(config)
        self.litestar: Litestar | None = None
        self.lane: Lane | None = None
        self.forwarded: ProxyHeadersMiddleware | None = None
        if served is not None:
            self.litestar, self.forwarded = served
            self.lane = cast("Lane", self.litestar.asgi_handler)
        # When the connection, idle since its last answer, is to be closed; None while a
        # request is on its way or being answered.
        self.idle_until: float | None = None
        # The exchange, not a GET, whose turn came in this read: answered at once if its whole
        # body is in by the end of it (on_message_complete), else run in a task then.
        self.turn: LaneExchange | None = None

    def on_headers_complete(self) -> None:
        lane = self.lane
        parser = self.parser
        if lane is None or parser.should_upgrade():
            super().on_headers_complete()
            return
        scope: dict[str, Any] = self.scope  # type: ignore[assignment]
        http_version = parser.get_http_version()
        scope["method"] = parser.get_method().decode("ascii")
        if http_version != "1.1":
            scope["http_version"] = http_version
        url = httptools.parse_url(self.url)
        raw_path = url.path
        path = raw_path.decode("ascii")
        scope["path"] = unquote(path) if "%" in path else path
        scope["raw_path"] = raw_path
        scope["query_string"] = url.query or b""
        taken = lane.take(scope)  # type: ignore[arg-type]
        if taken is None:
            super().on_headers_complete()  # sets the same keys again, then uvicorn's cycle
            return
        template, incoming = taken
        scope["app"] = scope["litestar_app"] = self.litestar  # what Litestar's __call__ sets
        exchange = LaneExchange(
            self,
            lane,
            scope,  # type: ignore[arg-type]
            template,
            accept_request_id(incoming),
            keep_alive=http_version != "1.0" and parser.should_keep_alive(),
            expect_continue=self.expect_100_continue,
        )
        previous = self.cycle
        self.cycle = exchange  # type: ignore[assignment]
        if previous is None or previous.response_complete:
            exchange.started = time.perf_counter()
            if scope["method"] == "GET":  # no body to wait for (the lane declines one that has)
                self._answer(exchange)
            else:  # answered at once if its whole body is in by the end of this read
                self.turn = exchange
                self.loop.call_soon(self._body_on_its_way, exchange)
        else:  # pipelined: its turn comes when the answers before it are complete
            self.flow.pause_reading()
            self.pipeline.appendleft((exchange, self.app))  # type: ignore[arg-type]

    def _answer(self, exchange: LaneExchange) -> None:
        """From callbacks if the lane can (:meth:`Lane.answer_at_once`), else in a task."""
        if self.forwarded is None and exchange.lane.answer_at_once(exchange):
            return
        self._start_asgi_task(exchange, self.app)  # type: ignore[arg-type]

    def on_message_complete(self) -> None:
        super().on_message_complete()
        exchange = self.turn
        if exchange is not None:  # its whole body came in the read its turn came in
            self.turn = None
            self._answer(exchange)

    def _body_on_its_way(self, exchange: LaneExchange) -> None:
        """After the read in which its turn came: a body not all in is read by the lane, in a
        task (with its deadline)."""
        if self.turn is exchange:
            self.turn = None
            self._start_asgi_task(exchange, self.app)  # type: ignore[arg-type]

    def connection_lost(self, exc: Exception | None) -> None:
        super().connection_lost(exc)
        if self.timeout_keep_alive_task is not None:
            self.timeout_keep_alive_task.cancel()
            self.timeout_keep_alive_task = None

    # -- keep-alive: one timer per connection ---------------------------------------------------
    # uvicorn arms a timer after every answer and cancels it on the next read; with uvloop that
    # pair costs a few percent of a proxied request. Here the timer stays armed, and when it
    # fires it closes the connection if it has been idle long enough, or comes back later.
    def _unset_keepalive_if_required(self) -> None:  # uvicorn calls it on every read
        self.idle_until = None

    def on_response_complete(self) -> None:
        self.server_state.total_requests += 1
        if self.transport.is_closing():
            return
        self.idle_until = None
        flow = self.flow
        if flow.read_paused:
            flow.resume_reading()
        if self.pipeline:
            cycle, app = self.pipeline.pop()
            self._start_asgi_task(cycle, app)
            return
        self.idle_until = idle_until = self.loop.time() + self.timeout_keep_alive
        if self.timeout_keep_alive_task is None:
            self.timeout_keep_alive_task = self.loop.call_at(idle_until, self._keep_alive_expired)

    def _keep_alive_expired(self) -> None:
        self.timeout_keep_alive_task = None
        idle_until = self.idle_until
        if idle_until is None:
            return  # busy: armed again when its answer is complete
        if self.loop.time() < idle_until:
            self.timeout_keep_alive_task = self.loop.call_at(idle_until, self._keep_alive_expired)
        else:
            self.timeout_keep_alive_handler()
