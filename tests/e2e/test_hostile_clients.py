"""Hostile clients against real processes on loopback: slow bodies, one address holding many
requests, a request without Host, a registration burst and saturated password hashing.

The gateway believes ``X-Forwarded-For`` from 127.0.0.1 (``FORWARDED_ALLOW_IPS``), as behind an
ingress: each test client picks its own client address, so 300 attackers can come from 300
addresses or from one, and the honest client from another. Token decisions are not cached, so
every token request below is a real check by auth.

Bound stated by the slow-body test: while 300 clients hold bodies open, each token request
answers (200 for a valid token, 401 for a forged one) within ``HONEST_BOUND_SECONDS``.
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass

import httpx
import pytest
import pytest_asyncio
from sqlalchemy import func, select

from auth_service.models import User as AuthUser
from shared import PROBLEM_MEDIA_TYPE, Database
from tests.e2e.conftest import User, echo_saw, forge_for, headers_with_id, new_user, request_id
from tests.support.stack import Stack, start_stack

BODY_TIMEOUT_SECONDS = 3.0
MAX_REQUESTS_PER_CLIENT = 20
REGISTRATIONS_PER_ADDRESS = 5
HONEST_BOUND_SECONDS = 1.0
HONEST = {"X-Forwarded-For": "198.51.100.7"}


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def hostile_stack(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Stack]:
    async with start_stack(
        tmp_path_factory.mktemp("hostile"),
        auth_env={
            "LOGIN_MAX_ATTEMPTS_PER_ADDRESS": "0",
            "REGISTER_MAX_ATTEMPTS_PER_ADDRESS": str(REGISTRATIONS_PER_ADDRESS),
            # One hash at a time, and a dear one (about a second here): saturation is easy to
            # reach and a 503 is clearly faster than a hash.
            "ARGON2_MAX_CONCURRENT": "1",
            "ARGON2_TIME_COST": "8",
        },
        gateway_env={
            "FORWARDED_ALLOW_IPS": "127.0.0.1",
            "GATEWAY_TOKEN_CACHE_SECONDS": "0",
            "GATEWAY_BODY_TIMEOUT_SECONDS": str(BODY_TIMEOUT_SECONDS),
            "GATEWAY_MAX_REQUESTS_PER_CLIENT": str(MAX_REQUESTS_PER_CLIENT),
        },
    ) as running:
        yield running


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def honest(hostile_stack: Stack) -> User:
    async with httpx.AsyncClient(base_url=hostile_stack.url, timeout=30, headers=HONEST) as http:
        return await new_user(http)


@dataclass
class RawAnswer:
    status: int
    headers: dict[str, str]
    body: bytes
    seconds: float

    def problem(self) -> dict[str, object]:
        assert self.headers["content-type"] == PROBLEM_MEDIA_TYPE
        problem: dict[str, object] = json.loads(self.body)
        assert problem["status"] == self.status
        return problem


def _parse(raw: bytes, seconds: float) -> RawAnswer:
    head, _, body = raw.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = {
        name.strip().lower(): value.strip()
        for name, _, value in (line.partition(":") for line in lines[1:])
    }
    return RawAnswer(int(lines[0].split(" ")[1]), headers, body, seconds)


async def slow_login(url: str, address: str, stop_after: float) -> RawAnswer:
    """Headers at once, then the body one byte every half second, until an answer comes."""
    host, port = url.removeprefix("http://").split(":")
    reader, writer = await asyncio.open_connection(host, int(port))
    started = time.monotonic()
    writer.write(
        b"POST /api/v1/auth/login HTTP/1.1\r\nHost: gateway\r\n"
        b"Content-Type: application/json\r\nContent-Length: 64\r\n"
        b"X-Forwarded-For: " + address.encode() + b"\r\n\r\n{"
    )

    async def dribble() -> None:
        while time.monotonic() - started < stop_after:
            await asyncio.sleep(0.5)
            writer.write(b" ")
            await writer.drain()

    dribbling = asyncio.create_task(dribble())
    try:
        raw = await asyncio.wait_for(reader.read(65536), stop_after)
        while b"\r\n\r\n" not in raw:
            raw += await reader.read(65536)
        head, _, body = raw.partition(b"\r\n\r\n")
        length = next(
            int(line.split(b":")[1])
            for line in head.split(b"\r\n")
            if line.lower().startswith(b"content-length:")
        )
        while len(body) < length:
            body += await reader.read(65536)
        return _parse(head + b"\r\n\r\n" + body, time.monotonic() - started)
    finally:
        dribbling.cancel()
        writer.close()


async def raw_request(url: str, request: bytes) -> RawAnswer:
    host, port = url.removeprefix("http://").split(":")
    reader, writer = await asyncio.open_connection(host, int(port))
    started = time.monotonic()
    try:
        writer.write(request)
        await writer.drain()
        raw = await asyncio.wait_for(_read_answer(reader), 5)
        return _parse(raw, time.monotonic() - started)
    finally:
        writer.close()


async def _read_answer(reader: asyncio.StreamReader) -> bytes:
    """The whole answer: the head may come in one segment and the body in another."""
    head = await reader.readuntil(b"\r\n\r\n")
    length = 0
    for line in head.decode("latin-1").split("\r\n")[1:]:
        name, _, value = line.partition(":")
        if name.strip().lower() == "content-length":
            length = int(value.strip())
    return head + await reader.readexactly(length)


async def _timed(http: httpx.AsyncClient, headers: dict[str, str]) -> tuple[int, float]:
    started = time.monotonic()
    response = await http.get("/api/v1/billing/invoices", headers=headers)
    return response.status_code, time.monotonic() - started


async def test_during_a_slow_body_attack_from_300_addresses_tokens_are_still_decided(
    hostile_stack: Stack, honest: User
) -> None:
    async with httpx.AsyncClient(base_url=hostile_stack.url, timeout=10, headers=HONEST) as http:
        forged = (await forge_for(hostile_stack, http, honest)).signed(aud="someone-else")
        attack_started = time.monotonic()
        attackers = [
            asyncio.create_task(
                slow_login(hostile_stack.url, f"10.0.{n // 250}.{n % 250 + 1}", 15.0)
            )
            for n in range(300)
        ]
        await asyncio.sleep(1.0)  # every attacker connected and holding its body open
        answers: list[tuple[str, int, float]] = []
        for _ in range(3):
            answers.append(("valid", *await _timed(http, honest.bearer)))
            answers.append(("forged", *await _timed(http, {"Authorization": f"Bearer {forged}"})))
        honest_done = time.monotonic() - attack_started
        try:
            assert [(kind, status) for kind, status, _ in answers] == [
                ("valid", 200),
                ("forged", 401),
            ] * 3
            assert max(seconds for _, _, seconds in answers) < HONEST_BOUND_SECONDS
        finally:
            outcomes = await asyncio.gather(*attackers, return_exceptions=True)
    attacked = [answer for answer in outcomes if isinstance(answer, RawAnswer)]
    assert len(attacked) == len(outcomes), outcomes
    # The honest requests were served while every attacker still held its request open.
    assert honest_done < min(answer.seconds for answer in attacked)
    assert {answer.status for answer in attacked} == {408}
    for answer in attacked:
        assert answer.problem()["title"] == "Request Timeout"
        assert answer.headers["connection"] == "close"
        assert BODY_TIMEOUT_SECONDS <= answer.seconds < BODY_TIMEOUT_SECONDS + 5


async def test_one_address_past_its_budget_gets_429_at_once_and_others_are_served(
    hostile_stack: Stack, honest: User
) -> None:
    attackers = [
        asyncio.create_task(slow_login(hostile_stack.url, "203.0.113.66", 15.0))
        for _ in range(MAX_REQUESTS_PER_CLIENT + 20)
    ]
    await asyncio.sleep(1.0)
    async with httpx.AsyncClient(base_url=hostile_stack.url, timeout=10, headers=HONEST) as http:
        status, seconds = await _timed(http, honest.bearer)
    attacked = await asyncio.gather(*attackers)
    assert (status, seconds < HONEST_BOUND_SECONDS) == (200, True)
    refused = [answer for answer in attacked if answer.status == 429]
    held = [answer for answer in attacked if answer.status == 408]
    assert (len(refused), len(held)) == (20, MAX_REQUESTS_PER_CLIENT)
    for answer in refused:
        assert answer.headers["retry-after"] == "1"
        assert answer.problem()["instance"] == "/api/v1/auth/login"
        assert answer.seconds < 1.0  # at once, not after the body deadline


async def test_an_http11_request_without_host_is_400_and_reaches_no_service(
    hostile_stack: Stack,
) -> None:
    rid, rid10 = request_id(), request_id()
    without = await raw_request(
        hostile_stack.url, f"GET /api/v1/products HTTP/1.1\r\nX-Request-ID: {rid}\r\n\r\n".encode()
    )
    http10 = await raw_request(
        hostile_stack.url,
        f"GET /api/v1/products HTTP/1.0\r\nX-Request-ID: {rid10}\r\n\r\n".encode(),
    )
    assert without.status == 400
    problem = without.problem()
    assert problem["detail"] == "An HTTP/1.1 request must carry a Host header."
    assert problem["request_id"] == rid
    assert await echo_saw(hostile_stack, rid) == []
    assert http10.status == 200  # HTTP/1.0 never required Host
    assert len(await echo_saw(hostile_stack, rid10)) == 1


async def _users_named(stack: Stack, emails: list[str]) -> int:
    """How many of these emails auth's database holds."""
    database = Database(stack.auth.env["AUTH_DATABASE_URL"])
    try:
        async with database.engine.connect() as connection:
            found = await connection.scalar(
                select(func.count()).select_from(AuthUser).where(AuthUser.email.in_(emails))
            )
        return int(found or 0)
    finally:
        await database.dispose()


def _emails(count: int) -> list[str]:
    return [f"burst-{uuid.uuid4().hex[:10]}@example.com" for _ in range(count)]


async def test_a_registration_burst_from_one_address_is_429_past_the_limit(
    hostile_stack: Stack,
) -> None:
    emails = _emails(REGISTRATIONS_PER_ADDRESS + 5)
    address = {"X-Forwarded-For": "192.0.2.10"}
    async with httpx.AsyncClient(base_url=hostile_stack.url, timeout=30, headers=address) as http:
        responses = [
            await http.post(
                "/api/v1/auth/register",
                json={"email": email, "password": "correct-horse-battery", "name": "Burst"},
            )
            for email in emails
        ]
    statuses = [response.status_code for response in responses]
    assert statuses == [201] * REGISTRATIONS_PER_ADDRESS + [429] * 5
    for refused in responses[REGISTRATIONS_PER_ADDRESS:]:
        assert refused.headers["content-type"] == PROBLEM_MEDIA_TYPE
        assert 1 <= int(refused.headers["retry-after"]) <= 3600
    assert await _users_named(hostile_stack, emails[:REGISTRATIONS_PER_ADDRESS]) == 5
    assert await _users_named(hostile_stack, emails[REGISTRATIONS_PER_ADDRESS:]) == 0


async def test_saturated_hashing_answers_503_at_once_and_stores_nothing(
    hostile_stack: Stack,
) -> None:
    emails = _emails(8)

    async def register(http: httpx.AsyncClient, n: int) -> tuple[httpx.Response, float]:
        started = time.monotonic()
        response = await http.post(
            "/api/v1/auth/register",
            json={"email": emails[n], "password": "correct-horse-battery", "name": "Burst"},
            # Each from its own address: only the hashing bound can refuse them.
            headers=headers_with_id(request_id(), **{"X-Forwarded-For": f"192.0.2.{100 + n}"}),
        )
        return response, time.monotonic() - started

    async with httpx.AsyncClient(base_url=hostile_stack.url, timeout=30) as http:
        results = await asyncio.gather(*(register(http, n) for n in range(8)))
    accepted = [(n, seconds) for n, (r, seconds) in enumerate(results) if r.status_code == 201]
    refused = [(n, r, seconds) for n, (r, seconds) in enumerate(results) if r.status_code == 503]
    assert len(accepted) + len(refused) == 8
    assert accepted
    assert refused
    fastest_hash = min(seconds for _, seconds in accepted)
    for _, response, seconds in refused:
        assert response.headers["content-type"] == PROBLEM_MEDIA_TYPE
        assert response.headers["retry-after"] == "1"
        assert seconds < fastest_hash  # refused at once, not after waiting for a hash
    assert await _users_named(hostile_stack, [emails[n] for n, _ in accepted]) == len(accepted)
    assert await _users_named(hostile_stack, [emails[n] for n, _, _ in refused]) == 0
