"""The services' HTTP/1.1 protocol serving the gateway, over real sockets: proxied requests
bypass uvicorn's ASGI cycle and keep every behaviour a client can see (framing, pipelining,
``Expect``, body deadline, keep-alive, per-address budget, request ids, metrics); other requests
still take uvicorn's cycle and Litestar."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import pytest
import pytest_asyncio
import uvicorn

from gateway.app import create_app
from gateway.at_once import ForwardAtOnce, RelayAtOnce
from gateway.settings import GatewaySettings
from shared import PROBLEM_MEDIA_TYPE, LaneProtocol
from shared._coalesce import NO_WEBSOCKET_DETAIL, UPGRADE_WITH_BODY_DETAIL
from shared._lane_protocol import LaneExchange
from tests.support.stream_server import listening

TOKEN = b"eyJhbGciOiJFZERTQSJ9.eyJzdWIiOiJ1In0.dmFsaWQ"
LARGE = bytes(range(256)) * 1200  # 300 KiB: more than one read, more than the flush size
CUT_LATE_SECONDS = 0.3  # how long the upstream waits before it cuts a "cut-late" request


@dataclass
class Upstream:
    """Auth and facturation on one port: answers by path, records what reached it."""

    port: int = 0
    seen: list[tuple[str, str, dict[str, str], bytes]] = field(default_factory=list)
    release: asyncio.Event = field(default_factory=asyncio.Event)
    held: asyncio.Event = field(default_factory=asyncio.Event)

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                lines = head.decode("latin-1").split("\r\n")
                method, target, _ = lines[0].split(" ", 2)
                headers = {
                    name.strip().lower(): value.strip()
                    for name, _, value in (line.partition(":") for line in lines[1:] if line)
                }
                body = await reader.readexactly(int(headers.get("content-length", "0")))
                self.seen.append((method, target, headers, body))
                writer.write(await self.answer(method, target, headers, body))
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()

    async def answer(self, method: str, target: str, headers: dict[str, str], body: bytes) -> bytes:
        if target == "/internal/v1/tokens/check":
            identity = {
                "user_id": "u-1",
                "email": "u@example.com",
                "exp": int(time.time()) + 600,
                "jti": "j",
            }
            return _answer(200, json.dumps(identity).encode())
        if target == "/billing/invoices/chunked":
            return (
                b"HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\ntransfer-encoding: chunked\r\n\r\n"
                b"5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n"
            )
        if target == "/billing/invoices/large":
            return _answer(200, LARGE, b"application/octet-stream")
        if target == "/billing/invoices/silent":
            await asyncio.sleep(5)
        if target == "/billing/invoices/cut":
            raise ConnectionAbortedError  # the connection closed, nothing answered
        if target == "/billing/invoices/cut-late":
            await asyncio.sleep(CUT_LATE_SECONDS)
            raise ConnectionAbortedError
        if target == "/auth/login":
            self.held.set()
            await self.release.wait()
        echo = {"method": method, "target": target, "headers": headers, "length": len(body)}
        payload = json.dumps(echo).encode()
        if method == "HEAD":
            return _answer(200, payload)[: -len(payload)]
        return _answer(200, payload, extra=b"x-upstream: yes\r\nx-request-id: upstream-made\r\n")


def _answer(
    status: int, body: bytes, media_type: bytes = b"application/json", extra: bytes = b""
) -> bytes:
    return (
        b"HTTP/1.1 %d X\r\ncontent-type: %b\r\ncontent-length: %d\r\n%b\r\n"
        % (status, media_type, len(body), extra)
        + body
    )


@pytest_asyncio.fixture
async def upstream() -> AsyncIterator[Upstream]:
    fake = Upstream()
    async with listening(fake.handle) as fake.port:
        try:
            yield fake
        finally:
            fake.release.set()


SERVERS: list[uvicorn.Server] = []  # the last one is the gateway being served


@asynccontextmanager
async def gateway(upstream: Upstream, **changes: object) -> AsyncIterator[int]:
    """The gateway app served by uvicorn with :class:`LaneProtocol`; yields its port."""
    url = f"http://127.0.0.1:{upstream.port}"
    values: dict[str, object] = {
        "internal_token": "internal",
        "auth_url": url,
        "facturation_url": url,
        "gateway_connect_timeout_seconds": 1.0,
        "gateway_auth_timeout_seconds": 1.0,
    }
    values.update(changes)
    keep_alive = float(str(values.pop("keep_alive", 5)))
    forwarded_allow_ips = values.pop("forwarded_allow_ips", None)
    app = create_app(GatewaySettings(**values))  # type: ignore[arg-type]
    config = uvicorn.Config(
        app,
        host="127.0.0.1",
        port=0,
        http=LaneProtocol,
        log_config=None,
        access_log=False,
        # As python -m gateway does: trusted proxies only with FORWARDED_ALLOW_IPS.
        proxy_headers=forwarded_allow_ips is not None,
        forwarded_allow_ips=forwarded_allow_ips,  # type: ignore[arg-type]
        timeout_keep_alive=keep_alive,  # type: ignore[arg-type]
    )
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())
    SERVERS.append(server)
    while not server.started:  # noqa: ASYNC110 (uvicorn sets a flag, it has no event)
        await asyncio.sleep(0.01)
    port: int = server.servers[0].sockets[0].getsockname()[1]
    try:
        yield port
    finally:
        server.should_exit = True
        await task


@dataclass
class Reply:
    status: int
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


async def read_reply(reader: asyncio.StreamReader, *, head_only: bool = False) -> Reply:
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split(" ")[1])
    headers: dict[str, str] = {}
    for line in lines[1:]:
        if line:
            name, _, value = line.partition(":")
            assert name.lower() not in headers, f"{name} twice"
            headers[name.lower()] = value.strip()
    if head_only or status in (100, 204, 304):
        return Reply(status, headers, b"")
    if headers.get("transfer-encoding") == "chunked":
        body = b""
        while True:
            size = int((await reader.readuntil(b"\r\n"))[:-2], 16)
            chunk = await reader.readexactly(size + 2)
            if size == 0:
                return Reply(status, headers, body)
            body += chunk[:-2]
    return Reply(status, headers, await reader.readexactly(int(headers["content-length"])))


@asynccontextmanager
async def connection(port: int) -> AsyncIterator[tuple[asyncio.StreamReader, asyncio.StreamWriter]]:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        yield reader, writer
    finally:
        writer.close()


def get(path: str, *extra: str, method: str = "GET", version: str = "1.1") -> bytes:
    lines = [f"{method} {path} HTTP/{version}", "Host: gateway.test", *extra]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


@pytest.fixture
def exchanges(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The paths served by a :class:`LaneExchange` (not by uvicorn's cycle), in a task or at
    once."""
    served: list[str] = []
    start = LaneExchange.__init__

    def counted(self: LaneExchange, *args: Any, **kwargs: Any) -> None:
        start(self, *args, **kwargs)
        served.append(self.scope["path"])

    monkeypatch.setattr(LaneExchange, "__init__", counted)
    return served


def _sent(monkeypatch: pytest.MonkeyPatch, kind: type[ForwardAtOnce | RelayAtOnce]) -> list[str]:
    """The paths ``kind.send`` was called for, as it is called."""
    sent: list[str] = []
    send: Callable[..., None] = kind.send

    def counted(self: ForwardAtOnce | RelayAtOnce, *args: Any) -> None:
        sent.append(self.exchange.scope["path"])
        send(self, *args)

    monkeypatch.setattr(kind, "send", counted)
    return sent


@pytest.fixture
def at_once(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The paths forwarded from callbacks, without a task (``gateway/at_once.py``)."""
    return _sent(monkeypatch, ForwardAtOnce)


@pytest.fixture
def relayed_at_once(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The paths handed to the webhook relay from callbacks, without a task."""
    return _sent(monkeypatch, RelayAtOnce)


async def test_a_proxied_get_is_served_by_an_exchange_with_the_upstreams_answer(
    upstream: Upstream, exchanges: list[str]
) -> None:
    async with gateway(upstream) as port, connection(port) as (reader, writer):
        writer.write(get("/api/v1/products?page=2", "X-Request-ID: rid-1", "X-User-Id: forged"))
        reply = await read_reply(reader)
    assert exchanges == ["/api/v1/products"]
    assert reply.status == 200
    assert reply.headers["x-request-id"] == "rid-1"  # the upstream's own is replaced
    assert reply.headers["x-upstream"] == "yes"
    assert "date" in reply.headers
    assert "connection" not in reply.headers
    echo = reply.json()
    assert echo["target"] == "/products?page=2"
    assert echo["headers"]["x-request-id"] == "rid-1"
    assert echo["headers"]["x-internal-token"] == "internal"
    assert "x-user-id" not in echo["headers"]  # never taken from the client


async def test_pipelined_requests_are_answered_in_order_on_one_connection(
    upstream: Upstream, exchanges: list[str]
) -> None:
    async with gateway(upstream) as port, connection(port) as (reader, writer):
        writer.write(b"".join(get("/api/v1/products", f"X-Request-ID: r{n}") for n in range(3)))
        replies = [await read_reply(reader) for _ in range(3)]
        writer.write(get("/healthz"))  # and then a request uvicorn's cycle serves
        health = await read_reply(reader)
    assert [reply.headers["x-request-id"] for reply in replies] == ["r0", "r1", "r2"]
    assert [reply.json()["headers"]["x-request-id"] for reply in replies] == ["r0", "r1", "r2"]
    assert health.status == 200
    assert len(exchanges) == 3


async def test_expect_100_continue_is_answered_before_the_body_is_read(
    upstream: Upstream,
) -> None:
    body = b'{"id":"evt_1"}'
    async with gateway(upstream) as port, connection(port) as (reader, writer):
        writer.write(
            get(
                "/webhooks/stripe",
                "Expect: 100-continue",
                f"Content-Length: {len(body)}",
                method="POST",
            )
        )
        interim = await read_reply(reader)
        writer.write(body)
        reply = await read_reply(reader)
    assert interim.status == 100
    assert reply.status == 200
    assert upstream.seen[-1][3] == body
    assert "expect" not in upstream.seen[-1][2]


async def test_a_refusal_before_the_body_sends_no_100_continue(upstream: Upstream) -> None:
    async with (
        gateway(upstream, gateway_max_body_bytes=10) as port,
        connection(port) as (reader, writer),
    ):
        writer.write(
            get("/webhooks/stripe", "Expect: 100-continue", "Content-Length: 11", method="POST")
        )
        reply = await read_reply(reader)
    assert reply.status == 413
    assert reply.headers["content-type"] == PROBLEM_MEDIA_TYPE


async def test_a_body_past_its_deadline_is_408_problem_and_the_connection_closes(
    upstream: Upstream,
) -> None:
    async with (
        gateway(upstream, gateway_body_timeout_seconds=0.3) as port,
        connection(port) as (reader, writer),
    ):
        writer.write(get("/webhooks/stripe", "Content-Length: 10", method="POST") + b"{")
        reply = await read_reply(reader)
        rest = await asyncio.wait_for(reader.read(), 2)
    assert reply.status == 408
    assert reply.headers["content-type"] == PROBLEM_MEDIA_TYPE
    assert reply.headers["connection"] == "close"
    assert reply.json()["request_id"] == reply.headers["x-request-id"]
    assert rest == b""  # closed by the gateway
    assert all(target != "/webhooks/stripe" for _, target, _, _ in upstream.seen)


async def test_an_address_past_its_budget_is_429_while_its_first_request_is_held(
    upstream: Upstream,
) -> None:
    async with (
        gateway(upstream, gateway_max_requests_per_client=1) as port,
        connection(port) as (first_reader, first_writer),
    ):
        first_writer.write(get("/api/v1/auth/login", "Content-Length: 2", method="POST"))
        first_writer.write(b"{}")
        await asyncio.wait_for(upstream.held.wait(), 2)
        async with connection(port) as (reader, writer):
            writer.write(get("/api/v1/products"))
            refused = await read_reply(reader)
        upstream.release.set()
        served = await read_reply(first_reader)
    assert refused.status == 429
    assert refused.headers["retry-after"] == "1"
    assert served.status == 200


async def test_an_answer_without_length_is_sent_chunked_and_a_large_one_whole(
    upstream: Upstream,
) -> None:
    bearer = f"Authorization: Bearer {TOKEN.decode()}"
    async with gateway(upstream) as port, connection(port) as (reader, writer):
        writer.write(get("/api/v1/billing/invoices/chunked", bearer))
        chunked = await read_reply(reader)
        writer.write(get("/api/v1/billing/invoices/large", bearer))
        large = await read_reply(reader)
    assert chunked.headers["transfer-encoding"] == "chunked"
    assert chunked.body == b"hello world"
    assert large.headers["content-length"] == str(len(LARGE))
    assert large.body == LARGE


async def test_a_head_answer_has_no_body_and_the_connection_stays_usable(
    upstream: Upstream,
) -> None:
    async with gateway(upstream) as port, connection(port) as (reader, writer):
        writer.write(get("/api/v1/products", method="HEAD"))
        head = await read_reply(reader, head_only=True)
        writer.write(get("/api/v1/products"))
        after = await read_reply(reader)
    assert head.status == 200
    assert int(head.headers["content-length"]) > 0
    assert after.json()["method"] == "GET"


async def test_http10_and_connection_close_requests_are_answered_then_closed(
    upstream: Upstream,
) -> None:
    async with gateway(upstream) as port:
        for request in (
            get("/api/v1/products", version="1.0"),
            get("/api/v1/products", "Connection: close"),
        ):
            async with connection(port) as (reader, writer):
                writer.write(request)
                reply = await read_reply(reader)
                rest = await asyncio.wait_for(reader.read(), 2)
            assert reply.status == 200
            assert reply.headers["connection"] == "close"
            assert rest == b""


async def test_bytes_that_are_no_request_are_a_400_problem_and_the_connection_closes(
    upstream: Upstream,
) -> None:
    async with gateway(upstream) as port:
        for before, bad in (
            (b"", b"GET /api/v1/products\x00 HTTP/1.1\r\nHost: gateway.test\r\n\r\n"),
            (get("/api/v1/products"), b"NOT HTTP AT ALL\r\n\r\n"),  # after a good request
            (b"", get("/api/v1/products", "Content-Length: 2", "Content-Length: 3")),
        ):
            seen = len(upstream.seen)
            async with connection(port) as (reader, writer):
                if before:
                    writer.write(before)
                    assert (await read_reply(reader)).status == 200
                writer.write(bad)
                reply = await read_reply(reader)
                rest = await asyncio.wait_for(reader.read(), 2)
            assert reply.status == 400
            assert reply.headers["content-type"] == PROBLEM_MEDIA_TYPE
            assert reply.headers["connection"] == "close"
            assert "date" in reply.headers
            problem = reply.json()
            assert problem == {
                "type": "about:blank",
                "title": "Bad Request",
                "status": 400,
                "detail": "The request could not be parsed as HTTP/1.1.",
                "request_id": reply.headers["x-request-id"],
            }
            assert rest == b""
            assert len(upstream.seen) == seen + (1 if before else 0)


WEBSOCKET_HANDSHAKE = (
    "Connection: Upgrade",
    "Upgrade: websocket",
    "Sec-WebSocket-Version: 13",
    "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==",
)


@pytest.mark.parametrize(
    ("request_bytes", "detail"),
    [
        (get("/api/v1/products", *WEBSOCKET_HANDSHAKE), NO_WEBSOCKET_DETAIL),
        # A route of the app, not of the lane.
        (get("/health", *WEBSOCKET_HANDSHAKE), NO_WEBSOCKET_DETAIL),
        (get("/api/v1/products", "Connection: Upgrade", "Upgrade: websocket"), NO_WEBSOCKET_DETAIL),
        (
            get(
                "/webhooks/stripe",
                "Connection: Upgrade",
                "Upgrade: h2c",
                "Content-Type: application/json",
                "Content-Length: 2",
                method="POST",
            )
            + b"{}",
            UPGRADE_WITH_BODY_DETAIL,
        ),
    ],
    ids=["websocket", "websocket-to-the-app", "websocket-without-key", "upgrade-with-a-body"],
)
async def test_a_websocket_handshake_or_an_upgrade_with_a_body_is_a_400_problem(
    upstream: Upstream, request_bytes: bytes, detail: str
) -> None:
    """No service serves a WebSocket (the app answered an empty 403, the WebSocket library a
    plain-text 400); and the body of an upgrade request never reached the app (it waited for it
    until its deadline)."""
    async with gateway(upstream) as port, connection(port) as (reader, writer):
        writer.write(request_bytes + get("/api/v1/products"))
        reply = await asyncio.wait_for(read_reply(reader), 2)
        rest = await asyncio.wait_for(reader.read(), 2)
    assert reply.status == 400
    assert reply.headers["content-type"] == PROBLEM_MEDIA_TYPE
    assert reply.headers["connection"] == "close"
    assert reply.json() == {
        "type": "about:blank",
        "title": "Bad Request",
        "status": 400,
        "detail": detail,
        "request_id": reply.headers["x-request-id"],
    }
    assert rest == b""  # closed: the request behind it is not answered
    assert upstream.seen == []


async def test_an_upgrade_no_service_makes_is_answered_as_http_then_the_connection_closes(
    upstream: Upstream,
) -> None:
    """``curl --http2`` over http:// asks for ``h2c``: the request is answered as HTTP/1.1.
    The parser reads nothing after an upgrade's head, so a request behind it on the same
    connection waited forever: the connection now closes after the answer."""
    upgrade = ("Connection: Upgrade, HTTP2-Settings", "Upgrade: h2c", "HTTP2-Settings: AAMAAABk")
    async with gateway(upstream) as port, connection(port) as (reader, writer):
        writer.write(get("/api/v1/products", *upgrade) + get("/api/v1/products"))
        reply = await asyncio.wait_for(read_reply(reader), 2)
        rest = await asyncio.wait_for(reader.read(), 2)
    assert reply.status == 200
    assert reply.headers["connection"] == "close"
    assert rest == b""
    assert [target for _, target, _, _ in upstream.seen] == ["/products"]
    assert "upgrade" not in upstream.seen[0][2]  # hop-by-hop: never forwarded


async def test_an_idle_connection_is_closed_after_the_keep_alive_timeout(
    upstream: Upstream,
) -> None:
    async with gateway(upstream, keep_alive=0.3) as port, connection(port) as (reader, writer):
        writer.write(get("/api/v1/products"))
        await read_reply(reader)
        started = time.monotonic()
        rest = await asyncio.wait_for(reader.read(), 3)
    assert rest == b""
    assert 0.2 < time.monotonic() - started < 2


async def test_a_connection_in_use_outlives_the_keep_alive_timeout_counted_from_its_start(
    upstream: Upstream,
) -> None:
    async with gateway(upstream, keep_alive=0.4) as port, connection(port) as (reader, writer):
        for _ in range(4):  # 0.75 s in all, never 0.4 s idle
            writer.write(get("/api/v1/products"))
            assert (await read_reply(reader)).status == 200
            await asyncio.sleep(0.25)
        rest = await asyncio.wait_for(reader.read(), 3)
    assert rest == b""


async def test_rounds_of_pipelined_requests_are_answered_and_a_shutdown_waits_for_an_answer(
    upstream: Upstream,
) -> None:
    async with gateway(upstream) as port:
        async with connection(port) as (reader, writer):
            for round_ in range(3):
                writer.write(b"".join(get("/api/v1/products") for _ in range(5)) + get("/healthz"))
                replies = [await read_reply(reader) for _ in range(6)]
                assert [reply.status for reply in replies] == [200] * 6, round_
        async with connection(port) as (reader, writer):
            writer.write(get("/api/v1/auth/login", "Content-Length: 2", method="POST") + b"{}")
            await asyncio.wait_for(upstream.held.wait(), 2)
            SERVERS[-1].should_exit = True  # a graceful shutdown begins
            await asyncio.sleep(0.3)
            upstream.release.set()
            reply = await read_reply(reader)
    assert reply.status == 200
    assert reply.headers["connection"] == "close"


async def test_behind_a_trusted_proxy_the_client_it_names_is_forwarded(
    upstream: Upstream, exchanges: list[str]
) -> None:
    async with (
        gateway(upstream, forwarded_allow_ips="127.0.0.1") as port,
        connection(port) as (reader, writer),
    ):
        writer.write(get("/api/v1/products", "X-Forwarded-For: 198.51.100.9"))
        reply = await read_reply(reader)
    assert exchanges == ["/api/v1/products"]
    assert reply.json()["headers"]["x-forwarded-for"] == "198.51.100.9"


async def test_an_untrusted_peer_cannot_name_another_client(upstream: Upstream) -> None:
    async with (
        gateway(upstream, forwarded_allow_ips="10.9.9.9") as port,
        connection(port) as (reader, writer),
    ):
        writer.write(get("/api/v1/products", "X-Forwarded-For: 198.51.100.9"))
        reply = await read_reply(reader)
    assert reply.json()["headers"]["x-forwarded-for"] == "127.0.0.1"


def _series(
    metrics: bytes, name: str, status: int = 200, method: str = "GET", path: str = ""
) -> float:
    """A gateway series of the proxied requests, by default the GETs (the registry is the
    process's)."""
    labels = f'app_name="gateway",method="{method}",path="{path}",status_code="{status}"'
    series = f"{name}{{{labels}}} ".encode()
    for line in metrics.splitlines():
        if line.startswith(series):
            return float(line[len(series) :])
    return 0.0


async def test_requests_the_lane_does_not_take_go_through_litestar(
    upstream: Upstream, exchanges: list[str]
) -> None:
    async with gateway(upstream) as port, connection(port) as (reader, writer):
        writer.write(b"GET /api/v1/products HTTP/1.1\r\n\r\n")  # HTTP/1.1 without Host
        hostless = await read_reply(reader)
        writer.write(get("/metrics"))
        before = _series((await read_reply(reader)).body, "http_requests_total")
        writer.write(get("/api/v1/products", "Origin: http://elsewhere.test"))
        with_origin = await read_reply(reader)
        writer.write(get("/api/v1/products"))
        await read_reply(reader)
        writer.write(get("/metrics"))
        after = _series((await read_reply(reader)).body, "http_requests_total")
    assert hostless.status == 400
    assert with_origin.status == 200
    assert exchanges == ["/api/v1/products"]
    assert after - before == 2  # either lane, the same series


BEARER = f"Authorization: Bearer {TOKEN.decode()}"


async def _ask(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, path: str, *extra: str
) -> Reply:
    """A GET with the bearer token on a kept-alive connection, and its reply."""
    writer.write(get(path, BEARER, *extra))
    return await read_reply(reader)


async def test_a_get_whose_token_is_known_is_forwarded_at_once_as_the_ordinary_path_would(
    upstream: Upstream, exchanges: list[str], at_once: list[str]
) -> None:
    """The first GET asks auth (a task: it waits); the second, its decision cached and the
    connection to the upstream idle, is forwarded from callbacks, and answered alike."""
    async with gateway(upstream) as port, connection(port) as (reader, writer):
        writer.write(get("/metrics"))
        before = _series((await read_reply(reader)).body, "http_requests_total")
        ordinary = await _ask(
            reader, writer, "/api/v1/billing/invoices?page=2", "X-Request-ID: rid-1"
        )
        quick = await _ask(reader, writer, "/api/v1/billing/invoices?page=2", "X-Request-ID: rid-2")
        writer.write(get("/metrics"))
        metrics = (await read_reply(reader)).body
    assert exchanges == ["/api/v1/billing/invoices"] * 2
    assert at_once == ["/api/v1/billing/invoices"]
    assert (quick.status, ordinary.status) == (200, 200)
    assert quick.headers.keys() == ordinary.headers.keys()
    assert quick.headers["x-request-id"] == "rid-2"
    assert quick.headers["x-upstream"] == "yes"
    ordinary_echo, quick_echo = ordinary.json(), quick.json()
    assert quick_echo["headers"].pop("x-request-id") == "rid-2"
    assert ordinary_echo["headers"].pop("x-request-id") == "rid-1"
    assert quick_echo == ordinary_echo  # target, identity, credential, forwarded-for
    assert quick_echo["headers"]["x-user-id"] == "u-1"
    assert _series(metrics, "http_requests_total") - before == 2
    assert _series(metrics, "http_requests_in_progress") == 0


async def test_answers_forwarded_at_once_are_written_whole_or_streamed(
    upstream: Upstream, at_once: list[str]
) -> None:
    """A chunked answer that came whole is written at once, framed by the gateway; a large
    one is streamed by a task."""
    async with gateway(upstream) as port, connection(port) as (reader, writer):
        await _ask(reader, writer, "/api/v1/billing/invoices")
        chunked = await _ask(reader, writer, "/api/v1/billing/invoices/chunked")
        large = await _ask(reader, writer, "/api/v1/billing/invoices/large")
        after = await _ask(reader, writer, "/api/v1/billing/invoices")
    assert at_once == [
        "/api/v1/billing/invoices/chunked",
        "/api/v1/billing/invoices/large",
        "/api/v1/billing/invoices",
    ]
    assert chunked.headers["transfer-encoding"] == "chunked"
    assert chunked.body == b"hello world"
    assert large.headers["content-length"] == str(len(LARGE))
    assert large.body == LARGE
    assert after.status == 200


async def test_no_answer_in_time_to_a_get_forwarded_at_once_is_a_504_problem(
    upstream: Upstream, at_once: list[str]
) -> None:
    async with (
        gateway(upstream, gateway_upstream_timeout_seconds=0.3) as port,
        connection(port) as (reader, writer),
    ):
        await _ask(reader, writer, "/api/v1/billing/invoices")
        started = time.monotonic()
        late = await _ask(reader, writer, "/api/v1/billing/invoices/silent", "X-Request-ID: rid-9")
        waited = time.monotonic() - started
        after = await _ask(reader, writer, "/api/v1/billing/invoices")
        writer.write(get("/metrics"))
        metrics = (await read_reply(reader)).body
    assert at_once[0] == "/api/v1/billing/invoices/silent"
    assert late.status == 504
    assert late.headers["content-type"] == PROBLEM_MEDIA_TYPE
    assert late.headers["x-request-id"] == "rid-9"
    assert late.json()["request_id"] == "rid-9"
    assert 0.25 < waited < 2
    assert after.status == 200
    assert _series(metrics, "http_requests_in_progress") == 0
    assert _series(metrics, "http_requests_error_total", 504) >= 1


async def test_a_kept_alive_connection_closed_under_a_get_forwarded_at_once_sends_it_again(
    upstream: Upstream, at_once: list[str]
) -> None:
    """Nothing came back on a reused connection: the ordinary path sends the GET again once
    (on a new connection), as it does for its own; closed again, that is a 502 problem."""
    async with gateway(upstream) as port, connection(port) as (reader, writer):
        await _ask(reader, writer, "/api/v1/billing/invoices")
        cut = await _ask(reader, writer, "/api/v1/billing/invoices/cut")
        after = await _ask(reader, writer, "/api/v1/billing/invoices")
    assert at_once[0] == "/api/v1/billing/invoices/cut"
    assert [target for _, target, _, _ in upstream.seen].count("/billing/invoices/cut") == 2
    assert cut.status == 502
    assert cut.headers["content-type"] == PROBLEM_MEDIA_TYPE
    assert after.status == 200


async def test_a_get_given_back_by_the_at_once_path_is_timed_from_its_first_attempt(
    upstream: Upstream, at_once: list[str]
) -> None:
    """Its duration counts both sends (the one from callbacks, then the ordinary path's), each
    cut after a wait: the clock is not restarted when the request is given back."""
    async with gateway(upstream) as port, connection(port) as (reader, writer):
        await _ask(reader, writer, "/api/v1/billing/invoices")
        writer.write(get("/metrics"))
        before = (await read_reply(reader)).body
        cut = await _ask(reader, writer, "/api/v1/billing/invoices/cut-late")
        writer.write(get("/metrics"))
        after = (await read_reply(reader)).body
    assert at_once[0] == "/api/v1/billing/invoices/cut-late"
    assert [target for _, target, _, _ in upstream.seen].count("/billing/invoices/cut-late") == 2
    assert cut.status == 502
    name = "http_request_duration_seconds_sum"
    seconds = _series(after, name, status=502) - _series(before, name, status=502)
    assert seconds >= 2 * CUT_LATE_SECONDS


async def test_a_client_gone_before_its_answer_forwarded_at_once_gives_its_budget_back(
    upstream: Upstream, at_once: list[str]
) -> None:
    async with gateway(
        upstream, gateway_max_requests_per_client=1, gateway_upstream_timeout_seconds=0.3
    ) as port:
        async with connection(port) as (reader, writer):
            await _ask(reader, writer, "/api/v1/billing/invoices")
            writer.write(get("/api/v1/billing/invoices/silent", BEARER))
            await writer.drain()
            await asyncio.sleep(0.05)
        await asyncio.sleep(0.5)  # the upstream's deadline passes: the exchange ends
        async with connection(port) as (reader, writer):
            after = await _ask(reader, writer, "/api/v1/billing/invoices")
            writer.write(get("/metrics"))
            metrics = (await read_reply(reader)).body
    assert at_once[0] == "/api/v1/billing/invoices/silent"
    assert after.status == 200  # the address's one request in flight was given back
    assert _series(metrics, "http_requests_in_progress") == 0


DELIVERY = b'{"id":"evt_1","type":"invoice.paid"}'
DELIVERIES = ("http_requests_total", 200, "POST", "/webhooks/stripe")  # a series of theirs
REFUSED = (502, "POST", "/webhooks/stripe")


def _delivery(request_id: str) -> bytes:
    """A Stripe delivery's head (its body is :data:`DELIVERY`)."""
    return get(
        "/webhooks/stripe",
        "Stripe-Signature: t=1,v1=abc",
        f"Content-Length: {len(DELIVERY)}",
        f"X-Request-ID: {request_id}",
        method="POST",
    )


async def test_a_delivery_whose_body_came_with_its_head_is_relayed_at_once_as_ordinarily(
    upstream: Upstream, relayed_at_once: list[str]
) -> None:
    """A delivery whose body follows its head in a later read takes a task; one that came
    whole is handed to the relay from callbacks, and both are answered alike."""
    async with gateway(upstream) as port, connection(port) as (reader, writer):
        writer.write(get("/metrics"))
        before = _series((await read_reply(reader)).body, *DELIVERIES)
        writer.write(_delivery("rid-1"))
        await writer.drain()
        await asyncio.sleep(0.05)
        writer.write(DELIVERY)
        ordinary = await read_reply(reader)
        writer.write(_delivery("rid-2") + DELIVERY)
        quick = await read_reply(reader)
        writer.write(get("/metrics"))
        metrics = (await read_reply(reader)).body
    assert relayed_at_once == ["/webhooks/stripe"]
    assert (quick.status, ordinary.status) == (200, 200)
    assert quick.headers.keys() == ordinary.headers.keys()
    assert quick.headers["x-request-id"] == "rid-2"
    ordinary_echo, quick_echo = ordinary.json(), quick.json()
    assert quick_echo["headers"].pop("x-request-id") == "rid-2"
    assert ordinary_echo["headers"].pop("x-request-id") == "rid-1"
    assert quick_echo == ordinary_echo  # target, signature, credential, forwarded-for, length
    assert quick_echo["headers"]["stripe-signature"] == "t=1,v1=abc"
    assert quick_echo["length"] == len(DELIVERY)
    assert [body for _, _, _, body in upstream.seen[-2:]] == [DELIVERY, DELIVERY]
    assert _series(metrics, *DELIVERIES) - before == 2
    assert _series(metrics, "http_requests_in_progress", 200, "POST", "/webhooks/stripe") == 0


async def test_a_delivery_relayed_at_once_to_an_unreachable_facturation_is_a_502_problem(
    upstream: Upstream, relayed_at_once: list[str]
) -> None:
    async with listening(upstream.handle) as closed:
        pass  # a port nobody listens on any more
    async with (
        gateway(upstream, facturation_url=f"http://127.0.0.1:{closed}") as port,
        connection(port) as (reader, writer),
    ):
        writer.write(get("/metrics"))
        before = _series((await read_reply(reader)).body, "http_requests_error_total", *REFUSED)
        writer.write(_delivery("rid-7") + DELIVERY)
        refused = await read_reply(reader)
        writer.write(get("/metrics"))
        metrics = (await read_reply(reader)).body
    assert relayed_at_once == ["/webhooks/stripe"]
    assert refused.status == 502
    assert refused.headers["content-type"] == PROBLEM_MEDIA_TYPE
    assert refused.headers["x-request-id"] == "rid-7"
    assert refused.json()["request_id"] == "rid-7"
    assert _series(metrics, "http_requests_error_total", *REFUSED) - before == 1
    assert _series(metrics, "http_requests_in_progress", 200, "POST", "/webhooks/stripe") == 0
