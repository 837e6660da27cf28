"""A tiny upstream that answers every request with what it received: method, path, query,
headers, and the SHA-256 and length of the body. It stands in for facturation in gateway tests
and benchmarks.

``python -m tests.support.echo_upstream serve --host H --port P``

- ``GET /healthz`` answers 200.
- ``GET /__echo/requests`` lists the last requests it saw (health and this route excluded).
- Query ``sleep=S`` waits S seconds before answering; ``set_cookie=1`` adds a ``Set-Cookie``;
  ``chunks=N`` sends the body in N pieces without a ``Content-Length``.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import hashlib
import json
from typing import Any
from urllib.parse import parse_qs

import uvicorn

Scope = dict[str, Any]
seen: collections.deque[dict[str, Any]] = collections.deque(maxlen=1000)


async def _read_body(receive: Any) -> bytes:
    body = b""
    while True:
        message = await receive()
        chunk: bytes = message.get("body", b"")
        body += chunk
        if not message.get("more_body", False):
            return body


async def _answer(send: Any, status: int, payload: Any, headers: list[tuple[bytes, bytes]]) -> None:
    body = json.dumps(payload).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
                *headers,
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


async def app(scope: Scope, receive: Any, send: Any) -> None:
    if scope["type"] == "lifespan":
        while (await receive())["type"] != "lifespan.shutdown":
            await send({"type": "lifespan.startup.complete"})
        await send({"type": "lifespan.shutdown.complete"})
        return
    path: str = scope["path"]
    if path == "/healthz":
        await _answer(send, 200, {"status": "ok"}, [])
        return
    if path == "/__echo/requests":
        await _answer(send, 200, list(seen), [])
        return
    body = await _read_body(receive)
    query = scope["query_string"].decode("latin-1")
    options = {key: values[0] for key, values in parse_qs(query).items()}
    echo = {
        "method": scope["method"],
        "path": scope["raw_path"].decode("latin-1") if scope.get("raw_path") else path,
        "query": query,
        "headers": [[n.decode("latin-1"), v.decode("latin-1")] for n, v in scope["headers"]],
        "body_sha256": hashlib.sha256(body).hexdigest(),
        "body_length": len(body),
    }
    seen.append(echo)
    if "sleep" in options:
        await asyncio.sleep(float(options["sleep"]))
    extra: list[tuple[bytes, bytes]] = [(b"x-echo", b"1")]
    if options.get("set_cookie"):
        extra.append((b"set-cookie", b"echo_session=from-upstream; Path=/"))
    if "chunks" in options:
        payload = json.dumps(echo).encode()
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [(b"content-type", b"application/json"), *extra],
            }
        )
        pieces = max(1, int(options["chunks"]))
        size = -(-len(payload) // pieces)
        for start in range(0, len(payload), size):
            await send(
                {
                    "type": "http.response.body",
                    "body": payload[start : start + size],
                    "more_body": True,
                }
            )
        await send({"type": "http.response.body", "body": b""})
        return
    await _answer(send, 200, echo, extra)


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m tests.support.echo_upstream")
    parser.add_argument("command", nargs="?", default="serve", choices=["serve"])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8002)
    parser.add_argument("--workers", type=int, default=1)
    args = parser.parse_args()
    uvicorn.run(
        "tests.support.echo_upstream:app",
        host=args.host,
        port=args.port,
        workers=args.workers,
        log_level="warning",
        access_log=False,
    )


if __name__ == "__main__":
    main()
