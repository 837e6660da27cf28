"""The HTTP/1.1 pool (the gateway's to its private services, facturation's to Stripe) against a
scripted server on a loopback port."""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest

from shared import (
    ConnectionPool,
    UpstreamConnectError,
    UpstreamProtocolError,
    UpstreamTimeoutError,
)
from tests.support.processes import free_port

Script = Callable[[asyncio.StreamReader, asyncio.StreamWriter, int], Awaitable[None]]


class ScriptedServer:
    """Runs ``script(reader, writer, connection_number)`` for each accepted connection."""

    def __init__(self, script: Script, **options: Any) -> None:
        self.script = script
        self.options = options
        self.connections = 0
        self.requests: list[bytes] = []
        self.server: asyncio.Server | None = None

    async def __aenter__(self) -> ConnectionPool:
        async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            self.connections += 1
            try:
                await self.script(reader, writer, self.connections)
            except (ConnectionError, asyncio.IncompleteReadError):
                pass
            finally:
                writer.close()

        self.server = await asyncio.start_server(handle, "127.0.0.1", 0)
        port = self.server.sockets[0].getsockname()[1]
        return ConnectionPool(
            "127.0.0.1", port, max_connections=4, connect_timeout=1, **self.options
        )

    async def __aexit__(self, *_: object) -> None:
        assert self.server is not None
        self.server.close()
        await self.server.wait_closed()

    @classmethod
    def answering(cls, body: bytes) -> ScriptedServer:
        """A server that answers every request with ``body``, keeping its connections open."""

        async def script(
            reader: asyncio.StreamReader, writer: asyncio.StreamWriter, _: int
        ) -> None:
            while True:
                await server.head(reader)
                writer.write(ok(body))

        server = cls(script)
        return server

    async def head(self, reader: asyncio.StreamReader) -> bytes:
        head = await reader.readuntil(b"\r\n\r\n")
        self.requests.append(head)
        return head


def ok(body: bytes, *extra: bytes) -> bytes:
    lines = [b"HTTP/1.1 200 OK", b"content-length: %d" % len(body), *extra]
    return b"\r\n".join(lines) + b"\r\n\r\n" + body


async def get(pool: ConnectionPool, method: str = "GET", **kwargs: object) -> tuple[int, bytes]:
    response = await pool.request(
        method,
        "/thing?x=1",
        [(b"accept", b"*/*")],
        kwargs.get("body"),  # type: ignore[arg-type]
        read_timeout=1,
        content_length=False,
    )
    return response.status, await response.read()


async def test_connections_are_kept_alive_and_reused() -> None:
    server = ScriptedServer.answering(b"hello")
    async with server as pool:
        assert await get(pool) == (200, b"hello")
        assert await get(pool) == (200, b"hello")
    assert server.connections == 1
    assert server.requests[0].startswith(b"GET /thing?x=1 HTTP/1.1\r\nhost: 127.0.0.1:")
    assert b"\r\naccept: */*\r\n" in server.requests[0]


async def test_chunked_answer_is_read_whole() -> None:
    async def script(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, _: int) -> None:
        await reader.readuntil(b"\r\n\r\n")
        writer.write(b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n")
        for piece in (b"one ", b"two ", b"three"):
            writer.write(b"%x\r\n%b\r\n" % (len(piece), piece))
            await writer.drain()
        writer.write(b"0\r\n\r\n")

    async with ScriptedServer(script) as pool:
        assert await get(pool) == (200, b"one two three")


async def test_body_delimited_by_close_is_read_whole_and_not_reused() -> None:
    server: ScriptedServer

    async def script(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, _: int) -> None:
        await server.head(reader)
        writer.write(b"HTTP/1.1 200 OK\r\nconnection: close\r\n\r\nuntil the end")
        await writer.drain()

    server = ScriptedServer(script)
    async with server as pool:
        assert await get(pool) == (200, b"until the end")
        assert await get(pool) == (200, b"until the end")
    assert server.connections == 2


async def test_streamed_body_without_length_is_sent_chunked() -> None:
    received: list[bytes] = []

    async def script(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, _: int) -> None:
        head = await reader.readuntil(b"\r\n\r\n")
        assert b"transfer-encoding: chunked" in head
        while True:
            size = int((await reader.readuntil(b"\r\n")).strip(), 16)
            data = await reader.readexactly(size + 2)
            if size == 0:
                break
            received.append(data[:-2])
        writer.write(ok(b"done"))

    async def body() -> AsyncIterator[bytes]:
        yield b"\x00\x01"
        yield b"\xff" * 1000

    async with ScriptedServer(script) as pool:
        assert await get(pool, "POST", body=body()) == (200, b"done")
    assert b"".join(received) == b"\x00\x01" + b"\xff" * 1000


async def test_refused_connection_is_a_connect_error() -> None:
    pool = ConnectionPool("127.0.0.1", free_port(), max_connections=1, connect_timeout=1)
    with pytest.raises(UpstreamConnectError):
        await get(pool)


async def test_silent_upstream_is_a_timeout() -> None:
    async def script(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, _: int) -> None:
        await reader.readuntil(b"\r\n\r\n")
        await asyncio.sleep(5)

    async with ScriptedServer(script) as pool:
        with pytest.raises(UpstreamTimeoutError):
            await get(pool)


async def test_garbage_answer_is_a_protocol_error() -> None:
    async def script(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, _: int) -> None:
        await reader.readuntil(b"\r\n\r\n")
        writer.write(b"SMTP ready\r\n\r\n")
        await writer.drain()
        await asyncio.sleep(1)

    async with ScriptedServer(script) as pool:
        with pytest.raises(UpstreamProtocolError):
            await get(pool)


def answering_once(gate: asyncio.Event) -> Script:
    """Answers ``done`` to each request once ``gate`` is set."""

    async def script(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, _: int) -> None:
        while True:
            await reader.readuntil(b"\r\n\r\n")
            await gate.wait()
            writer.write(ok(b"done"))
            await writer.drain()

    return script


def closes_on_second_request(server_ref: list[ScriptedServer]) -> Script:
    async def script(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, n: int) -> None:
        await server_ref[0].head(reader)
        writer.write(ok(b"first" if n == 1 else b"fresh"))
        await writer.drain()
        if n == 1:
            await reader.readuntil(b"\r\n\r\n")  # the second request: dropped unanswered

    return script


async def test_idempotent_request_on_a_connection_closed_meanwhile_is_retried_once() -> None:
    ref: list[ScriptedServer] = []
    server = ScriptedServer(closes_on_second_request(ref))
    ref.append(server)
    async with server as pool:
        assert await get(pool) == (200, b"first")
        assert await get(pool) == (200, b"fresh")
    assert server.connections == 2


async def test_non_idempotent_request_is_not_retried() -> None:
    ref: list[ScriptedServer] = []
    server = ScriptedServer(closes_on_second_request(ref))
    ref.append(server)
    async with server as pool:
        assert await get(pool) == (200, b"first")
        with pytest.raises(UpstreamProtocolError):
            await get(pool, "POST", body=b"{}")
    assert server.connections == 1


async def test_any_request_is_retried_once_when_the_caller_says_every_request_may_go_again() -> (
    None
):
    ref: list[ScriptedServer] = []
    server = ScriptedServer(closes_on_second_request(ref), retry_any_method=True)
    ref.append(server)
    async with server as pool:
        assert await get(pool, "POST", body=b"{}") == (200, b"first")
        assert await get(pool, "POST", body=b"{}") == (200, b"fresh")
    assert server.connections == 2


async def test_an_idle_connection_that_received_anything_is_not_reused() -> None:
    async def script(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, n: int) -> None:
        if n == 1:
            await reader.readuntil(b"\r\n\r\n")
            writer.write(ok(b"first"))
            await writer.drain()
            await asyncio.sleep(0.02)
            # Unasked: were it read as the next request's answer, that request would get a 408.
            writer.write(b"HTTP/1.1 408 Request Timeout\r\ncontent-length: 0\r\n\r\n")
            await writer.drain()
        while True:
            await reader.readuntil(b"\r\n\r\n")
            writer.write(ok(b"next"))

    server = ScriptedServer(script)
    async with server as pool:
        assert await get(pool) == (200, b"first")
        await asyncio.sleep(0.1)
        assert await get(pool) == (200, b"next")
    assert server.connections == 2


async def test_an_answer_cut_short_is_an_error_not_a_truncated_body() -> None:
    async def script(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, _: int) -> None:
        await reader.readuntil(b"\r\n\r\n")
        writer.write(b'HTTP/1.1 200 OK\r\ncontent-length: 100\r\n\r\n{"partial')
        await writer.drain()

    async with ScriptedServer(script) as pool:
        with pytest.raises(UpstreamProtocolError):
            await get(pool)


async def test_no_more_idle_connections_are_kept_than_max_idle() -> None:
    gate = asyncio.Event()
    server = ScriptedServer(answering_once(gate), max_idle=1)
    async with server as pool:
        for _ in range(2):  # two at once, twice: one connection kept, one opened again
            both = asyncio.gather(get(pool), get(pool))
            await asyncio.sleep(0.05)
            gate.set()
            assert list(await both) == [(200, b"done")] * 2
            gate.clear()
    assert server.connections == 3


@pytest.mark.parametrize(
    ("host", "port", "secure", "header"),
    [
        ("127.0.0.1", 8000, False, b"127.0.0.1:8000"),
        ("auth", 80, False, b"auth"),
        ("api.stripe.com", 443, True, b"api.stripe.com"),
        ("api.stripe.com", 80, True, b"api.stripe.com:80"),
        ("::1", 8443, True, b"[::1]:8443"),
        ("::1", 80, False, b"[::1]"),
    ],
)
def test_the_host_header_leaves_out_the_default_port_and_brackets_ipv6(
    host: str, port: int, secure: bool, header: bytes
) -> None:
    context = ssl.create_default_context() if secure else None
    pool = ConnectionPool(host, port, max_connections=1, connect_timeout=1, ssl_context=context)
    assert pool.authority == header


async def test_head_answer_ends_at_its_headers() -> None:
    server: ScriptedServer

    async def script(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, _: int) -> None:
        await server.head(reader)
        writer.write(b"HTTP/1.1 200 OK\r\ncontent-length: 10\r\n\r\n")
        await writer.drain()
        await asyncio.sleep(1)

    server = ScriptedServer(script)
    async with server as pool:
        status, body = await get(pool, "HEAD")
    assert (status, body) == (200, b"")


async def _answer(pool: ConnectionPool) -> tuple[bytes | None, bytes]:
    """What ``whole_body`` gave once the head arrived, and the rest as streamed."""
    response = await pool.request("GET", "/thing", [], None, read_timeout=1, content_length=False)
    whole = response.whole_body()
    rest = b"".join([chunk async for chunk in response.stream()])
    return whole, rest


async def test_an_answer_that_arrived_with_its_head_is_taken_whole_and_its_connection_reused() -> (
    None
):
    server = ScriptedServer.answering(b"hello")
    async with server as pool:
        assert await _answer(pool) == (b"hello", b"")
        assert await _answer(pool) == (b"hello", b"")
    assert server.connections == 1


async def test_an_answer_still_arriving_is_left_to_the_stream() -> None:
    release = asyncio.Event()

    async def script(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, _: int) -> None:
        await reader.readuntil(b"\r\n\r\n")
        writer.write(b"HTTP/1.1 200 OK\r\ncontent-length: 10\r\n\r\nhello")
        await writer.drain()
        await release.wait()
        writer.write(b"world")
        await writer.drain()

    async with ScriptedServer(script) as pool:
        response = await pool.request(
            "GET", "/thing", [], None, read_timeout=1, content_length=False
        )
        assert response.whole_body() is None
        release.set()
        assert b"".join([chunk async for chunk in response.stream()]) == b"helloworld"


async def test_a_full_pool_serves_its_waiters_in_turn_and_one_that_gave_up_takes_no_slot() -> None:
    gate = asyncio.Event()
    async with ScriptedServer(answering_once(gate)) as pool:
        pool.connect_timeout = 0.2  # also how long a request waits for a free connection
        holders = [asyncio.create_task(get(pool)) for _ in range(4)]
        await asyncio.sleep(0.05)
        with pytest.raises(UpstreamTimeoutError):
            await get(pool)  # the four slots are taken: gives up
        pool.connect_timeout = 5
        waiters = [asyncio.create_task(get(pool)) for _ in range(2)]
        await asyncio.sleep(0.05)
        gate.set()
        results = await asyncio.gather(*holders, *waiters)
        assert results == [(200, b"done")] * 6
        # Every slot came back: four requests at once still go without waiting.
        assert await asyncio.wait_for(asyncio.gather(*(get(pool) for _ in range(4))), 1)


async def test_an_answer_that_keeps_coming_is_not_cut_by_the_read_deadline() -> None:
    async def script(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, _: int) -> None:
        await reader.readuntil(b"\r\n\r\n")
        writer.write(b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n")
        for _ in range(6):  # 1.2 s in all, never 1 s without a chunk
            await asyncio.sleep(0.2)
            writer.write(b"1\r\nx\r\n")
            await writer.drain()
        writer.write(b"0\r\n\r\n")
        await writer.drain()

    async with ScriptedServer(script) as pool:
        assert await get(pool) == (200, b"xxxxxx")
