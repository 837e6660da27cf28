"""Writes made in one turn of the event loop leave in one socket write."""

from __future__ import annotations

import asyncio
from typing import Any

from shared._coalesce import CoalescingTransport
from shared._http1 import _Connection


class RecordingTransport:
    def __init__(self) -> None:
        self.writes: list[bytes] = []
        self.closed = False
        self.events: list[str] = []

    def write(self, data: bytes) -> None:
        self.writes.append(data)
        self.events.append("write")

    def close(self) -> None:
        self.closed = True
        self.events.append("close")

    def is_closing(self) -> bool:
        return self.closed

    def get_write_buffer_size(self) -> int:
        return 0

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return ("127.0.0.1", 8000) if name == "sockname" else default


def coalescing(transport: RecordingTransport) -> CoalescingTransport:
    return CoalescingTransport(transport, asyncio.get_running_loop())  # type: ignore[arg-type]


async def test_a_head_and_a_body_written_in_one_turn_leave_in_one_write() -> None:
    raw = RecordingTransport()
    transport = coalescing(raw)
    transport.write(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\n")
    transport.write(b"{}")
    assert raw.writes == []
    assert transport.get_write_buffer_size() == 40
    await asyncio.sleep(0)
    assert raw.writes == [b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\n{}"]


async def test_writes_in_later_turns_are_sent_in_order() -> None:
    raw = RecordingTransport()
    transport = coalescing(raw)
    transport.write(b"a")
    await asyncio.sleep(0)
    transport.write(b"b")
    transport.write(b"c")
    await asyncio.sleep(0)
    assert raw.writes == [b"a", b"bc"]


async def test_close_sends_what_is_pending_first() -> None:
    raw = RecordingTransport()
    transport = coalescing(raw)
    transport.write(b"last words")
    transport.close()
    assert raw.events == ["write", "close"]
    assert raw.writes == [b"last words"]
    await asyncio.sleep(0)
    assert raw.writes == [b"last words"]


async def test_a_large_body_is_sent_at_once_so_flow_control_sees_it() -> None:
    raw = RecordingTransport()
    transport = coalescing(raw)
    transport.write(b"x" * 70_000)
    assert raw.writes == [b"x" * 70_000]


async def test_everything_else_is_the_real_transports() -> None:
    transport = coalescing(RecordingTransport())
    assert transport.get_extra_info("sockname") == ("127.0.0.1", 8000)


async def test_the_writes_of_one_turn_on_several_connections_leave_back_to_back_after_it() -> None:
    """The answers (or upstream requests) of one turn leave together at its end: a peer woken
    by the first is still awake for the next ones."""
    log: list[bytes] = []

    class Logged(RecordingTransport):
        def write(self, data: bytes) -> None:
            super().write(data)
            log.append(data)

    first, second = coalescing(Logged()), coalescing(Logged())
    first.write(b"answer 1")
    await asyncio.sleep(0)
    assert log == [b"answer 1"]
    second.write(b"answer 2")
    first.write(b"answer 3")
    second.write(b" end")
    assert log == [b"answer 1"]
    await asyncio.sleep(0)
    assert log == [b"answer 1", b"answer 2 end", b"answer 3"]


async def test_an_upstream_connection_sends_its_request_at_the_end_of_the_turn() -> None:
    raw = RecordingTransport()
    connection = _Connection()
    connection.connection_made(raw)  # type: ignore[arg-type]
    connection.write(b"GET / HTTP/1.1\r\nhost: upstream\r\n\r\n")
    assert raw.writes == []
    await asyncio.sleep(0)
    assert raw.writes == [b"GET / HTTP/1.1\r\nhost: upstream\r\n\r\n"]
    connection.write(b"POST / HTTP/1.1\r\n")
    connection.close()
    assert raw.events == ["write", "write", "close"]


async def test_what_is_pending_for_a_peer_gone_within_the_turn_is_dropped_quietly() -> None:
    """uvloop raises on a write to a closed transport; the flush runs in a callback, where that
    would be an error in the log for every client that hung up while its answer was written."""
    errors: list[dict[str, Any]] = []
    asyncio.get_running_loop().set_exception_handler(lambda _loop, context: errors.append(context))

    class Closed(RecordingTransport):
        def write(self, data: bytes) -> None:
            raise RuntimeError("unable to perform operation: the handler is closed")

    raw = Closed()
    transport = coalescing(raw)
    transport.write(b"an answer")
    raw.closed = True  # the peer hung up in the same turn
    await asyncio.sleep(0)

    assert errors == []
    assert transport.get_write_buffer_size() == 0
