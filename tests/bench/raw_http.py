"""The checkout bench's simulated browsers: one kept-alive HTTP/1.1 connection each, a request
built once as bytes and the answer read by its ``Content-Length``.

With an ``httpx.AsyncClient`` per user, the bench itself spent 75 ms of CPU on a round of 100
sessions (httpx's request and response models, httpcore, h11, anyio), more than half of what
facturation spent, on a machine of two cores where the three share them: the round measured
the load generator as much as the service. This costs a few milliseconds a round, as wrk does
for the webhook bench (docs/benchmarks.md).
"""

from __future__ import annotations

import asyncio
import contextlib
from urllib.parse import urlsplit

__all__ = ["RawConnection", "build_request"]


def build_request(
    method: str, url: str, path: str, headers: dict[str, str], body: bytes = b""
) -> bytes:
    """One whole HTTP/1.1 request to ``url``'s host for ``path``."""
    host = urlsplit(url).netloc
    lines = [f"{method} {path} HTTP/1.1", f"Host: {host}"]
    lines += [f"{name}: {value}" for name, value in headers.items()]
    if body or method not in ("GET", "HEAD"):
        lines.append(f"Content-Length: {len(body)}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body


class RawConnection:
    """One client connection; one exchange at a time."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer

    @classmethod
    async def open(cls, url: str) -> RawConnection:
        parts = urlsplit(url)
        reader, writer = await asyncio.open_connection(parts.hostname, parts.port)
        return cls(reader, writer)

    async def exchange(self, request: bytes) -> tuple[int, bytes]:
        """Send ``request`` and read its whole answer: the status and the body.

        Raises:
            RuntimeError: the answer has no ``Content-Length`` (chunked), or closes the
                connection: the bench's requests never get such answers from our services.
        """
        self.writer.write(request)
        head = await self.reader.readuntil(b"\r\n\r\n")
        status_line, _, header_block = head.partition(b"\r\n")
        status = int(status_line.split(b" ", 2)[1])
        length: int | None = None
        for line in header_block.split(b"\r\n"):
            name, _, value = line.partition(b":")
            if name.strip().lower() == b"content-length":
                length = int(value)
            elif name.strip().lower() == b"connection" and value.strip().lower() == b"close":
                raise RuntimeError(f"the server closes the connection: {head!r}")
        if length is None:
            raise RuntimeError(f"an answer without Content-Length: {head!r}")
        return status, await self.reader.readexactly(length)

    async def close(self) -> None:
        self.writer.close()
        with contextlib.suppress(OSError):
            await self.writer.wait_closed()
