"""The floor of a Python proxy on this machine, for ``bench_gateway``: the least a Python process
can do to forward one request, measured beside the gateway and nginx in the same run.

uvloop and httptools (what the gateway runs on), one keep-alive upstream connection per client
connection, and nothing else: each request's head is parsed, its headers copied as they are
(``Host`` and ``Connection`` aside) and written upstream; the upstream's answer is parsed only to
find where it ends, and written back as it came. No task, coroutine or future per request, no
token check, header hygiene, request id, metrics, log line, timeout or error answer: it is not a
proxy anyone should run, only the cost below which no Python proxy can go. Bodies are not
forwarded (the benchmark sends ``GET`` only).

    python -m tests.bench.bare_forwarder UPSTREAM_PORT PORT
"""

from __future__ import annotations

import asyncio
import sys
from typing import cast

import httptools
import uvloop

_DROPPED = frozenset({b"host", b"connection"})


class _Upstream(asyncio.Protocol):
    """The upstream connection of one client connection: answers go back as they came."""

    def __init__(self, client: _Client) -> None:
        self.client = client
        self.parser = httptools.HttpResponseParser(self)
        self.answer: list[bytes] = []
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast("asyncio.Transport", transport)  # uvloop's: not a subclass

    def data_received(self, data: bytes) -> None:
        self.answer.append(data)
        self.parser.feed_data(data)

    def on_message_complete(self) -> None:
        self.client.answer(b"".join(self.answer))
        self.answer = []

    def connection_lost(self, exc: Exception | None) -> None:
        self.client.close()


class _Client(asyncio.Protocol):
    """One client connection: each request head is written upstream once parsed."""

    def __init__(self, upstream_port: int) -> None:
        self.upstream_port = upstream_port
        self.parser = httptools.HttpRequestParser(self)
        self.transport: asyncio.Transport | None = None
        self.upstream: _Upstream | None = None
        self.url = b""
        self.headers: list[bytes] = []
        self.waiting: list[bytes] = []  # heads parsed before the upstream connection opened

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast("asyncio.Transport", transport)  # uvloop's: not a subclass

    def data_received(self, data: bytes) -> None:
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserError:
            self.close()

    def on_url(self, url: bytes) -> None:
        self.url = url

    def on_header(self, name: bytes, value: bytes) -> None:
        if name.lower() not in _DROPPED:
            self.headers += (name, b": ", value, b"\r\n")

    def on_message_complete(self) -> None:
        method = self.parser.get_method()
        head = b"".join(
            (method, b" ", self.url, b" HTTP/1.1\r\nhost: upstream\r\n", *self.headers, b"\r\n")
        )
        self.headers = []
        upstream = self.upstream
        if upstream is not None and upstream.transport is not None:
            upstream.transport.write(head)
            return
        self.waiting.append(head)
        if len(self.waiting) == 1:
            asyncio.get_running_loop().create_task(self._connect())

    async def _connect(self) -> None:
        loop = asyncio.get_running_loop()
        _, self.upstream = await loop.create_connection(
            lambda: _Upstream(self), "127.0.0.1", self.upstream_port
        )
        assert self.upstream.transport is not None
        self.upstream.transport.write(b"".join(self.waiting))
        self.waiting = []

    def answer(self, data: bytes) -> None:
        if self.transport is not None:
            self.transport.write(data)

    def close(self) -> None:
        if self.transport is not None:
            self.transport.close()

    def connection_lost(self, exc: Exception | None) -> None:
        if self.upstream is not None and self.upstream.transport is not None:
            self.upstream.transport.close()


async def serve(upstream_port: int, port: int) -> None:
    loop = asyncio.get_running_loop()
    server = await loop.create_server(lambda: _Client(upstream_port), "127.0.0.1", port)
    async with server:
        await server.serve_forever()


if __name__ == "__main__":
    uvloop.run(serve(int(sys.argv[1]), int(sys.argv[2])))
