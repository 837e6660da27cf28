"""Clients that try to wear the gateway out, in-process: a body that never finishes, one address
holding many requests, forwarded auth traffic that fills its pool, and a request without Host.

The private services are one small asyncio HTTP server that answers token checks at once, holds
``/auth/login`` until told to answer, and records every request it receives.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import pytest
import pytest_asyncio
from litestar import Litestar
from litestar.testing import AsyncTestClient

from gateway.app import create_app
from gateway.proxy import ClientBudget
from gateway.settings import GatewaySettings
from shared import PROBLEM_MEDIA_TYPE, SettingsError, TooManyRequestsError, load_settings
from tests.support.stream_server import listening

VALID = b"eyJhbGciOiJFZERTQSJ9.eyJzdWIiOiJ1In0.dmFsaWQ"
FORGED = b"eyJhbGciOiJFZERTQSJ9.eyJzdWIiOiJ1In0.Zm9yZ2Vk"


@dataclass
class FakeServices:
    """Auth and facturation on one port: what arrived, and a gate holding logins."""

    port: int = 0
    seen: list[tuple[str, str]] = field(default_factory=list)
    release_logins: asyncio.Event = field(default_factory=asyncio.Event)
    login_held: asyncio.Event = field(default_factory=asyncio.Event)
    refuse_registrations: bool = False

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                lines = head.decode("latin-1").split("\r\n")
                method, target, _ = lines[0].split(" ", 2)
                headers = dict(
                    (name.strip().lower(), value.strip())
                    for name, _, value in (line.partition(":") for line in lines[1:] if line)
                )
                length = int(headers.get("content-length", "0"))
                if length:
                    await reader.readexactly(length)
                self.seen.append((method, target))
                status, body, extra = 200, b'{"ok":true}', b""
                if target == "/internal/v1/tokens/check":
                    if headers.get("authorization", "").endswith(VALID.decode()):
                        body = json.dumps(
                            {
                                "user_id": "u-1",
                                "email": "u@example.com",
                                "exp": int(time.time()) + 600,
                                "jti": "j",
                            }
                        ).encode()
                    else:
                        status, body = 401, b'{"status":401}'
                elif target == "/auth/login":
                    self.login_held.set()
                    await self.release_logins.wait()
                elif target == "/auth/register" and self.refuse_registrations:
                    status, body, extra = 429, b'{"status":429}', b"retry-after: 30\r\n"
                writer.write(
                    b"HTTP/1.1 %d X\r\ncontent-type: application/json\r\ncontent-length: %d\r\n"
                    % (status, len(body))
                    + extra
                    + b"\r\n"
                    + body
                )
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()


@pytest_asyncio.fixture
async def services() -> AsyncIterator[FakeServices]:
    fake = FakeServices()
    async with listening(fake.handle) as fake.port:
        try:
            yield fake
        finally:
            fake.release_logins.set()


def settings(services: FakeServices, **changes: object) -> GatewaySettings:
    values: dict[str, object] = {
        "internal_token": "internal",
        "auth_url": services.url,
        "facturation_url": services.url,
        "gateway_connect_timeout_seconds": 1.0,
        "gateway_auth_timeout_seconds": 1.0,
        "gateway_token_cache_seconds": 0.0,
    }
    values.update(changes)
    return GatewaySettings(**values)  # type: ignore[arg-type]


@dataclass
class Answer:
    status: int
    headers: dict[bytes, bytes]
    body: bytes

    def problem(self) -> dict[str, Any]:
        assert self.headers[b"content-type"] == PROBLEM_MEDIA_TYPE.encode()
        problem: dict[str, Any] = json.loads(self.body)
        assert problem["status"] == self.status
        return problem


Receive = Callable[[], Awaitable[dict[str, Any]]]


def body_then_nothing(first: bytes) -> Receive:
    """A client that sends ``first`` and then never the rest of its body."""
    sent = False

    async def receive() -> dict[str, Any]:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": first, "more_body": True}
        await asyncio.sleep(3600)
        raise AssertionError("unreachable")

    return receive


def whole_body(body: bytes = b"") -> Receive:
    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": body, "more_body": False}

    return receive


async def call(
    app: Litestar,
    method: str,
    path: str,
    *,
    headers: list[tuple[bytes, bytes]] | None = None,
    receive: Receive | None = None,
    client: str = "203.0.113.7",
    http_version: str = "1.1",
) -> Answer:
    """One request straight into the ASGI app, as uvicorn would hand it over."""
    if headers is None:
        headers = [(b"host", b"gateway.test")]
    scope = {
        "type": "http",
        "asgi": {"version": "3.0", "spec_version": "2.3"},
        "http_version": http_version,
        "method": method,
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "root_path": "",
        "query_string": b"",
        "headers": headers,
        "client": (client, 50000),
        "server": ("127.0.0.1", 8000),
        "state": {},
    }
    start: dict[str, Any] = {}
    chunks: list[bytes] = []

    async def send(message: dict[str, Any]) -> None:
        if message["type"] == "http.response.start":
            start.update(message)
        else:
            chunks.append(message.get("body", b""))

    await app(scope, receive or whole_body(), send)  # type: ignore[arg-type]
    return Answer(start["status"], dict(start.get("headers", [])), b"".join(chunks))


def login_with_slow_body(first: bytes = b"{") -> dict[str, Any]:
    return {
        "headers": [
            (b"host", b"gateway.test"),
            (b"content-type", b"application/json"),
            (b"content-length", b"100"),
        ],
        "receive": body_then_nothing(first),
    }


def bearer(token: bytes) -> list[tuple[bytes, bytes]]:
    return [(b"host", b"gateway.test"), (b"authorization", b"Bearer " + token)]


async def test_a_body_that_does_not_arrive_in_time_is_408_and_never_forwarded(
    services: FakeServices,
) -> None:
    app = create_app(settings(services, gateway_body_timeout_seconds=0.3))
    async with AsyncTestClient(app):
        started = time.monotonic()
        answer = await call(app, "POST", "/api/v1/auth/login", **login_with_slow_body())
        elapsed = time.monotonic() - started
    assert answer.status == 408
    assert answer.problem()["title"] == "Request Timeout"
    # The rest of the body may still come: the connection must not be reused.
    assert answer.headers[b"connection"] == b"close"
    assert 0.3 <= elapsed < 2.0
    assert services.seen == []


async def test_a_body_in_several_pieces_within_the_deadline_is_forwarded_whole(
    services: FakeServices,
) -> None:
    pieces = [b'{"email":', b'"a@example.com",', b'"password":"x"}']

    async def receive() -> dict[str, Any]:
        await asyncio.sleep(0.05)
        piece = pieces.pop(0)
        return {"type": "http.request", "body": piece, "more_body": bool(pieces)}

    app = create_app(settings(services, gateway_body_timeout_seconds=2.0))
    services.release_logins.set()
    async with AsyncTestClient(app):
        answer = await call(
            app,
            "POST",
            "/api/v1/auth/login",
            headers=[(b"host", b"gateway.test"), (b"transfer-encoding", b"chunked")],
            receive=receive,
        )
    assert answer.status == 200
    assert services.seen == [("POST", "/auth/login")]


async def test_one_address_past_its_budget_is_429_while_another_address_is_served(
    services: FakeServices,
) -> None:
    app = create_app(
        settings(services, gateway_body_timeout_seconds=1.0, gateway_max_requests_per_client=2)
    )
    async with AsyncTestClient(app):
        holding = [
            asyncio.create_task(call(app, "POST", "/api/v1/auth/login", **login_with_slow_body()))
            for _ in range(2)
        ]
        await asyncio.sleep(0.1)
        refused = await call(app, "GET", "/api/v1/users/me", headers=bearer(VALID))
        other = await call(
            app, "GET", "/api/v1/users/me", headers=bearer(VALID), client="198.51.100.9"
        )
        held = await asyncio.gather(*holding)
        again = await call(app, "GET", "/api/v1/users/me", headers=bearer(VALID))
    assert refused.status == 429
    assert refused.headers[b"retry-after"] == b"1"
    assert refused.problem()["instance"] == "/api/v1/users/me"
    assert other.status == 200
    assert [answer.status for answer in held] == [408, 408]
    assert again.status == 200  # the slots came back when the slow requests ended
    # Only the two served requests reached a private service (each a token check and a GET).
    assert services.seen.count(("GET", "/users/me")) == 2


def test_the_budget_counts_per_address_and_forgets_idle_ones() -> None:
    budget = ClientBudget(2)
    budget.take("a")
    budget.take("a")
    with pytest.raises(TooManyRequestsError):
        budget.take("a")
    budget.take("b")
    budget.give_back("a")
    budget.take("a")
    for address in ("a", "a", "b"):
        budget.give_back(address)
    assert (budget.in_flight("a"), budget.in_flight("b")) == (0, 0)
    assert budget._in_flight == {}


async def test_a_valid_token_reaches_facturation_while_auth_forwarding_is_full(
    services: FakeServices,
) -> None:
    # One forwarding connection to auth, held below by a login that gets no answer.
    app = create_app(
        settings(services, gateway_max_connections=1, gateway_token_check_max_connections=1)
    )
    async with AsyncTestClient(app):
        login = asyncio.create_task(
            call(
                app,
                "POST",
                "/api/v1/auth/login",
                headers=[(b"host", b"gateway.test"), (b"content-length", b"2")],
                receive=whole_body(b"{}"),
            )
        )
        await asyncio.wait_for(services.login_held.wait(), 5)
        started = time.monotonic()
        valid = await call(app, "GET", "/api/v1/billing/invoices", headers=bearer(VALID))
        forged = await call(app, "GET", "/api/v1/billing/invoices", headers=bearer(FORGED))
        elapsed = time.monotonic() - started
        services.release_logins.set()
        assert (await login).status == 200
    assert valid.status == 200
    assert forged.status == 401
    assert forged.problem()["detail"] == "The access token is invalid, expired or revoked."
    assert elapsed < 0.9  # neither waited for the auth connect timeout (1 s)
    assert services.seen.count(("GET", "/billing/invoices")) == 1


async def test_an_http11_request_without_host_is_400_and_never_forwarded(
    services: FakeServices,
) -> None:
    app = create_app(settings(services))
    async with AsyncTestClient(app):
        api = await call(app, "GET", "/api/v1/products", headers=[])
        health = await call(app, "GET", "/healthz", headers=[])
        with_host = await call(app, "GET", "/api/v1/products")
        http10 = await call(app, "GET", "/api/v1/products", headers=[], http_version="1.0")
    assert api.status == 400
    assert api.problem()["detail"] == "An HTTP/1.1 request must carry a Host header."
    assert health.status == 400
    assert with_host.status == 200
    assert http10.status == 200  # HTTP/1.0 did not require Host
    assert services.seen == [("GET", "/products"), ("GET", "/products")]


def test_the_edge_bounds_are_read_from_the_environment() -> None:
    defaults = load_settings(GatewaySettings, {"INTERNAL_TOKEN": "t"})
    assert defaults.gateway_body_timeout_seconds == 15.0
    assert defaults.gateway_max_requests_per_client == 64
    assert defaults.gateway_token_check_max_connections == 64
    chosen = load_settings(
        GatewaySettings,
        {
            "INTERNAL_TOKEN": "t",
            "GATEWAY_BODY_TIMEOUT_SECONDS": "2.5",
            "GATEWAY_MAX_REQUESTS_PER_CLIENT": "8",
            "GATEWAY_TOKEN_CHECK_MAX_CONNECTIONS": "4",
        },
    )
    assert (
        chosen.gateway_body_timeout_seconds,
        chosen.gateway_max_requests_per_client,
        chosen.gateway_token_check_max_connections,
    ) == (2.5, 8, 4)
    with pytest.raises(SettingsError, match="GATEWAY_BODY_TIMEOUT_SECONDS"):
        load_settings(GatewaySettings, {"INTERNAL_TOKEN": "t", "GATEWAY_BODY_TIMEOUT_SECONDS": "0"})


async def test_an_address_auth_refused_registration_is_refused_at_the_gateway_until_retry_after(
    services: FakeServices,
) -> None:
    """Auth's registration limit is per address: once it answered 429, the gateway repeats the
    refusal for the Retry-After it gave, held a second and without forwarding; other addresses
    and routes go on."""
    app = create_app(settings(services))
    services.refuse_registrations = True
    json_body = [(b"host", b"gateway.test"), (b"content-length", b"2")]

    async def post(path: str, client: str = "203.0.113.7") -> Answer:
        return await call(
            app, "POST", path, headers=json_body, receive=whole_body(b"{}"), client=client
        )

    async with AsyncTestClient(app):
        first = await post("/api/v1/auth/register")
        started = time.monotonic()
        again = await asyncio.gather(*(post("/api/v1/auth/register") for _ in range(5)))
        held = time.monotonic() - started
        forwarded_after_refusal = services.seen.count(("POST", "/auth/register"))
        other_address = await post("/api/v1/auth/register", client="198.51.100.9")
        services.release_logins.set()
        login = await post("/api/v1/auth/login")

    assert first.status == 429
    assert first.headers[b"retry-after"] == b"30"
    assert forwarded_after_refusal == 1
    # Held about REFUSAL_DELAY_SECONDS, so a closed-loop burst knocks once a second, not at will.
    assert 0.9 <= held < 3.0
    for answer in again:
        assert answer.status == 429
        assert 1 <= int(answer.headers[b"retry-after"]) <= 30
        assert answer.problem()["retry_after"] == int(answer.headers[b"retry-after"])
    assert other_address.status == 429
    assert services.seen.count(("POST", "/auth/register")) == 2
    assert login.status == 200
