"""One send per connection per turn of the event loop: uvicorn writes a response's head and each
body part to the socket as it gets them, so a small answer costs two ``send`` system calls, each
also waking the peer. Here the writes made in one turn leave together, at the end of that turn
(or at once past 64 KiB, so flow control still sees a large body).

The end of an answer waits for the end of the turn too, and so do the requests the gateway and
the Stripe client write upstream (``shared._http1`` wraps its connections' transports): the
answers and requests of one turn then leave back to back. On a loopback socket the kernel wakes
the reader inside the writer's ``send``; a peer that the first write woke is still awake for the
next ones, where writes spread over the turn woke it again each time. With the end of an answer
written at once, ``perf`` put a fifth of the gateway's CPU in those wake-ups
(``sock_def_readable``), and the gateway cost 69 to 77 µs a proxied request against 59 to 62 µs with
every write held to the end of its turn (``docs/benchmarks.md``).
"""

from __future__ import annotations

import asyncio
from typing import Any

import msgspec
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from shared._problems import PROBLEM_MEDIA_TYPE, problem_document
from shared._request_id import accept_request_id

__all__ = [
    "NO_WEBSOCKET_DETAIL",
    "UNPARSEABLE_DETAIL",
    "UPGRADE_WITH_BODY_DETAIL",
    "CoalescingHttpToolsProtocol",
    "CoalescingTransport",
]

_FLUSH_AT = 65536
UNPARSEABLE_DETAIL = "The request could not be parsed as HTTP/1.1."
NO_WEBSOCKET_DETAIL = "No WebSocket is served here: send the request without Upgrade: websocket."
UPGRADE_WITH_BODY_DETAIL = "A request with a body cannot ask for an upgrade: send it without one."


class CoalescingTransport:
    """Delegates to ``transport``; what is written in one loop turn is sent in one write."""

    def __init__(self, transport: asyncio.Transport, loop: asyncio.AbstractEventLoop) -> None:
        self._transport = transport
        self._loop = loop
        self._pending: list[bytes] = []
        self._pending_bytes = 0

    def write(self, data: bytes) -> None:
        if not data:
            return
        if not self._pending:
            self._loop.call_soon(self.flush)
        self._pending.append(data)
        self._pending_bytes += len(data)
        if self._pending_bytes >= _FLUSH_AT:
            self.flush()

    def writelines(self, lines: Any) -> None:
        for data in lines:
            self.write(data)

    def flush(self) -> None:
        if not self._pending:
            return
        pending = self._pending
        self._pending = []
        self._pending_bytes = 0
        # The peer may have gone within the turn: what was for it is dropped, as the transport
        # would (uvloop's raises instead, in a callback nobody awaits).
        if not self._transport.is_closing():
            self._transport.write(pending[0] if len(pending) == 1 else b"".join(pending))

    def get_write_buffer_size(self) -> int:
        return self._transport.get_write_buffer_size() + self._pending_bytes

    def is_closing(self) -> bool:  # asked after every answer: not through __getattr__
        return self._transport.is_closing()

    def close(self) -> None:
        self.flush()
        self._transport.close()

    def abort(self) -> None:
        self._pending = []
        self._pending_bytes = 0
        self._transport.abort()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._transport, name)


class CoalescingHttpToolsProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol writing through a :class:`CoalescingTransport`, answering
    bytes that do not parse as a request, a WebSocket handshake and an upgrade with a body with
    problem+json, and closing the connection after any other upgrade it does not make."""

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(CoalescingTransport(transport, self.loop))  # type: ignore[arg-type]

    def on_headers_complete(self) -> None:
        if not self.parser.should_upgrade() or self._should_upgrade():
            super().on_headers_complete()  # (a WebSocket handshake: handle_websocket_upgrade)
            return
        # An upgrade to a protocol no service speaks (``h2c``: curl's ``--http2`` over http://)
        # is ignored, as HTTP allows, but the parser reads nothing after an upgrade's head: a
        # body would never arrive (the request waited for it until its deadline), and neither
        # would the next request on the connection. So one with a body is refused, and one
        # without is answered as HTTP/1.1, and then the connection closes.
        if any(
            (name == b"content-length" and value.strip() != b"0") or name == b"transfer-encoding"
            for name, value in self.headers
        ):
            self._refuse(UPGRADE_WITH_BODY_DETAIL)
            return
        super().on_headers_complete()
        self.cycle.keep_alive = False

    def send_400_response(self, msg: str) -> None:
        """uvicorn's answer to bytes that do not parse as an HTTP/1.1 request, which it writes
        as plain text (``msg``, already logged), as every other 4xx here is written: problem+json
        with a request id. The connection is closed after it, as uvicorn closes it: nothing
        read after the bad bytes can be trusted to start a request."""
        self._refuse(UNPARSEABLE_DETAIL)

    def handle_websocket_upgrade(self) -> None:
        """No service serves a WebSocket: a handshake is refused before any app or WebSocket
        library sees it (they answered an empty 403, or a plain-text 400 for a handshake
        without its key), and the connection closes: what follows would be WebSocket frames."""
        self._refuse(NO_WEBSOCKET_DETAIL)

    def _refuse(self, detail: str) -> None:
        """400 problem+json with a new request id, then the connection closes."""
        request_id = accept_request_id(None)
        body = msgspec.json.encode(
            problem_document(400, "Bad Request", detail, request_id=request_id)
        )
        head = [b"HTTP/1.1 400 Bad Request\r\n"]
        for name, value in self.server_state.default_headers:  # Date
            head += (name, b": ", value, b"\r\n")
        head += (
            b"content-type: ",
            PROBLEM_MEDIA_TYPE.encode(),
            b"\r\ncontent-length: ",
            str(len(body)).encode(),
            b"\r\nx-request-id: ",
            request_id.encode(),
            b"\r\nconnection: close\r\n\r\n",
            body,
        )
        self.transport.write(b"".join(head))
        self.transport.close()
