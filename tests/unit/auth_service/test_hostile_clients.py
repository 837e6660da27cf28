"""Registration bursts and hashing saturation: a limit per client address shared by replicas, and
a bound on password hashes in flight that answers 503 at once instead of queueing."""

from __future__ import annotations

import asyncio
import os
import threading
import time
from typing import Any

import msgspec
import pytest
from argon2 import PasswordHasher
from litestar.testing import AsyncTestClient
from sqlalchemy import event, func, select

from auth_service import AuthSettings, create_app
from auth_service.models import LoginAttempt, User
from auth_service.passwords import Passwords
from auth_service.ratelimit import REMEMBERED_REFUSALS, LoginRateLimiter
from shared import (
    INTERNAL_TOKEN_HEADER,
    PROBLEM_MEDIA_TYPE,
    Database,
    ServiceUnavailableError,
    SettingsError,
    TooManyRequestsError,
    load_settings,
)
from tests.unit.auth_service.conftest import CHEAP_HASHER, INTERNAL_TOKEN, PASSWORD, login

FROM_A = {"X-Forwarded-For": "203.0.113.7"}
FROM_B = {"X-Forwarded-For": "198.51.100.9"}


async def _count(database_url: str, model: type[User] | type[LoginAttempt]) -> int:
    database = Database(database_url)
    try:
        async with database.sessionmaker() as session:
            return int(await session.scalar(select(func.count()).select_from(model)) or 0)
    finally:
        await database.dispose()


async def _register_from(client: AsyncTestClient[Any], email: str, headers: dict[str, str]) -> Any:
    return await client.post(
        "/auth/register",
        json={"email": email, "password": PASSWORD, "name": "Burst"},
        headers=headers,
    )


def limited(settings: AuthSettings, **changes: Any) -> AuthSettings:
    return msgspec.structs.replace(settings, **changes)


async def test_a_registration_burst_from_one_address_is_429_past_the_limit_and_stores_nothing(
    settings: AuthSettings, auth_database_url: str
) -> None:
    three = limited(settings, register_max_attempts_per_address=3)
    async with AsyncTestClient(create_app(three)) as client:
        client.headers[INTERNAL_TOKEN_HEADER] = INTERNAL_TOKEN
        accepted = [await _register_from(client, f"u{n}@example.com", FROM_A) for n in range(3)]
        refused = await _register_from(client, "u3@example.com", FROM_A)
        elsewhere = await _register_from(client, "u4@example.com", FROM_B)
        refused_login = await login(client, email="u3@example.com")
    assert [response.status_code for response in accepted] == [201, 201, 201]
    assert refused.status_code == 429
    assert refused.headers["content-type"] == PROBLEM_MEDIA_TYPE
    problem = refused.json()
    assert problem["detail"] == "Too many registrations from this address; retry later."
    assert 3590 <= int(refused.headers["retry-after"]) <= 3600
    assert problem["retry_after"] == int(refused.headers["retry-after"])
    assert elsewhere.status_code == 201  # another address is not affected
    assert await _count(auth_database_url, User) == 4
    assert refused_login.status_code == 401  # the refused one was never stored


async def test_the_registration_limit_is_shared_by_replicas_on_one_database(
    settings: AuthSettings, auth_database_url: str
) -> None:
    two = limited(settings, register_max_attempts_per_address=2)
    async with (
        AsyncTestClient(create_app(two)) as first,
        AsyncTestClient(create_app(two)) as second,
    ):
        for replica in (first, second):
            replica.headers[INTERNAL_TOKEN_HEADER] = INTERNAL_TOKEN
        assert (await _register_from(first, "a@example.com", FROM_A)).status_code == 201
        assert (await _register_from(second, "b@example.com", FROM_A)).status_code == 201
        assert (await _register_from(first, "c@example.com", FROM_A)).status_code == 429
        assert (await _register_from(second, "d@example.com", FROM_A)).status_code == 429
    assert await _count(auth_database_url, User) == 2


async def test_a_gathered_burst_of_fifteen_registrations_stores_exactly_the_limit(
    settings: AuthSettings, auth_database_url: str
) -> None:
    five = limited(settings, register_max_attempts_per_address=5)
    async with AsyncTestClient(create_app(five)) as client:
        client.headers[INTERNAL_TOKEN_HEADER] = INTERNAL_TOKEN
        responses = await asyncio.gather(
            *(_register_from(client, f"c{n}@example.com", FROM_A) for n in range(15))
        )
    statuses = [response.status_code for response in responses]
    assert (statuses.count(201), statuses.count(429)) == (5, 10)
    assert await _count(auth_database_url, User) == 5


async def test_registration_limit_zero_is_off(settings: AuthSettings) -> None:
    off = limited(settings, register_max_attempts_per_address=0)
    async with AsyncTestClient(create_app(off)) as client:
        client.headers[INTERNAL_TOKEN_HEADER] = INTERNAL_TOKEN
        for n in range(25):
            response = await _register_from(client, f"z{n}@example.com", FROM_A)
            assert response.status_code == 201


def one_registration_an_hour(database: Database, now: list[float]) -> LoginRateLimiter:
    """One registration an hour per address (logins: five a minute), on the clock ``now[0]``."""
    return LoginRateLimiter(
        database.engine,
        max_failures_per_account=5,
        max_attempts_per_address=5,
        window_seconds=60,
        max_registrations_per_address=1,
        registration_window_seconds=3600,
        clock=lambda: now[0],
    )


async def test_registrations_leave_their_longer_window_only_when_it_has_passed(
    auth_database_url: str,
) -> None:
    now = [1_000_000.0]
    database = Database(auth_database_url)
    limiter = one_registration_an_hour(database, now)
    try:
        await limiter.record_registration("203.0.113.7")
        await limiter.record_address_attempt("203.0.113.7")
        now[0] += 120
        # The login attempt left its minute; the registration is still within its hour.
        assert await limiter.purge() == 1
        with pytest.raises(TooManyRequestsError) as refused:
            await limiter.record_registration("203.0.113.7")
        assert refused.value.headers["Retry-After"] == "3480"
        now[0] += 3481
        await limiter.record_registration("203.0.113.7")
        now[0] += 3601
        assert await limiter.purge() == 2  # both registrations are now older than the hour
    finally:
        await database.dispose()


async def test_an_address_refused_once_is_refused_from_memory_until_its_retry_after(
    auth_database_url: str,
) -> None:
    now = [1_000_000.0]
    database = Database(auth_database_url)
    statements: list[str] = []
    event.listen(
        database.engine.sync_engine,
        "before_cursor_execute",
        lambda *arguments: statements.append(arguments[2]),
    )
    limiter = one_registration_an_hour(database, now)
    try:
        limiter.refuse_known_registration("203.0.113.7")  # nothing known yet
        await limiter.record_registration("203.0.113.7")
        now[0] += 100
        with pytest.raises(TooManyRequestsError) as by_database:
            await limiter.record_registration("203.0.113.7")
        assert by_database.value.headers["Retry-After"] == "3500"
        statements.clear()
        now[0] += 1000
        with pytest.raises(TooManyRequestsError) as from_memory:
            limiter.refuse_known_registration("203.0.113.7")
        assert statements == []  # no database round trip
        assert from_memory.value.headers["Retry-After"] == "2500"
        assert from_memory.value.extra == {"retry_after": 2500}
        limiter.refuse_known_registration("198.51.100.9")  # another address is not affected
        now[0] += 2500
        # The window has passed: the memory lets go and the database decides again.
        limiter.refuse_known_registration("203.0.113.7")
        await limiter.record_registration("203.0.113.7")
        assert statements  # it was asked
    finally:
        await database.dispose()


async def test_a_known_address_gets_429_before_its_body_is_read_or_its_row_counted(
    settings: AuthSettings, auth_database_url: str
) -> None:
    one = limited(settings, register_max_attempts_per_address=1)
    async with AsyncTestClient(create_app(one)) as client:
        client.headers[INTERNAL_TOKEN_HEADER] = INTERNAL_TOKEN
        assert (await _register_from(client, "a@example.com", FROM_A)).status_code == 201
        assert (await _register_from(client, "b@example.com", FROM_A)).status_code == 429
        malformed = await client.post("/auth/register", content=b"{", headers=FROM_A)
        elsewhere = await client.post("/auth/register", content=b"{", headers=FROM_B)
    assert malformed.status_code == 429
    assert malformed.headers["content-type"] == PROBLEM_MEDIA_TYPE
    assert 3590 <= int(malformed.headers["retry-after"]) <= 3600
    assert elsewhere.status_code == 400  # an address not known over its limit is read as usual
    assert await _count(auth_database_url, LoginAttempt) == 1  # a's: the refused ones are not
    assert await _count(auth_database_url, User) == 1


async def test_the_memory_of_refused_addresses_is_bounded(auth_database_url: str) -> None:
    database = Database(auth_database_url)
    limiter = LoginRateLimiter(
        database.engine,
        max_failures_per_account=5,
        max_attempts_per_address=5,
        window_seconds=60,
        max_registrations_per_address=1,
    )
    await database.dispose()
    assert limiter.remembered_refusals.max_entries == REMEMBERED_REFUSALS == 10_000


class GatedHasher(PasswordHasher):
    """A cheap hasher whose hashes wait for a gate: hashing stays saturated until it opens."""

    def __init__(self) -> None:
        super().__init__(time_cost=1, memory_cost=1024, parallelism=1)
        self.gate = threading.Event()
        self.closed = False

    def hash(self, password: str | bytes, *, salt: bytes | None = None) -> str:
        if not self.closed:
            return super().hash(password, salt=salt)
        self.gate.wait(10)
        return super().hash(password, salt=salt)


async def test_saturated_hashing_answers_503_at_once_and_stores_nothing(
    settings: AuthSettings, auth_database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    app = create_app(limited(settings, argon2_max_concurrent=1))
    passwords: Passwords = app.state.passwords
    hasher = GatedHasher()
    monkeypatch.setattr(passwords, "_hasher", hasher)
    try:
        async with AsyncTestClient(app) as client:
            client.headers[INTERNAL_TOKEN_HEADER] = INTERNAL_TOKEN
            assert (await _register_from(client, "first@example.com", FROM_A)).status_code == 201
            # The test client serves one request at a time: the hash that fills the only slot
            # is started beside it, as another request's would be.
            hasher.closed = True
            holding = asyncio.create_task(passwords.hash("another password"))
            await asyncio.sleep(0)  # the task takes its slot before handing the hash to a thread
            assert passwords.in_flight == 1
            started = time.monotonic()
            refused = await _register_from(client, "second@example.com", FROM_B)
            refused_login = await login(client, email="first@example.com")
            elapsed = time.monotonic() - started
            hasher.gate.set()
            await holding
            hasher.closed = False
            after = await _register_from(client, "third@example.com", FROM_B)
            logged_in = await login(client, email="first@example.com")
    finally:
        hasher.gate.set()
    assert refused.status_code == 503
    assert refused.headers["content-type"] == PROBLEM_MEDIA_TYPE
    assert refused.headers["retry-after"] == "1"
    problem = refused.json()
    assert problem["detail"] == "Too many passwords are being checked right now; retry shortly."
    assert problem["retry_after"] == 1
    assert refused_login.status_code == 503  # a login's check is a hash too
    assert elapsed < 1.0  # answered at once, not after the held hash
    assert after.status_code == 201  # the slot came back
    assert logged_in.status_code == 200
    assert await _count(auth_database_url, User) == 2  # first and third; never second


async def test_passwords_admit_at_most_max_concurrent_hashes_and_free_their_slots() -> None:
    hasher = GatedHasher()
    passwords = Passwords(hasher, max_concurrent=2)
    hasher.closed = True
    try:
        held = [asyncio.create_task(passwords.hash("correct horse battery")) for _ in range(2)]
        await asyncio.sleep(0)
        assert passwords.in_flight == 2
        with pytest.raises(ServiceUnavailableError) as refused:
            await passwords.verify(None, "correct horse battery")
        assert refused.value.headers == {"Retry-After": "1"}
        hasher.gate.set()
        hashes = await asyncio.gather(*held)
    finally:
        hasher.gate.set()
    assert passwords.in_flight == 0
    assert await passwords.verify(hashes[0], "correct horse battery")


def test_the_default_bound_admits_four_hashes() -> None:
    assert Passwords(CHEAP_HASHER).max_concurrent == 4


class PriorityRecordingHasher(PasswordHasher):
    def __init__(self) -> None:
        super().__init__(time_cost=1, memory_cost=1024, parallelism=1)
        self.policies: list[int] = []

    def hash(self, password: str | bytes, *, salt: bytes | None = None) -> str:
        self.policies.append(os.sched_getscheduler(0))  # 0: the calling thread
        return super().hash(password, salt=salt)


async def test_hashes_run_only_on_cpu_time_the_event_loop_does_not_want() -> None:
    hasher = PriorityRecordingHasher()
    passwords = Passwords(hasher)
    try:
        await passwords.hash("correct horse battery")
    finally:
        passwords.close()
    loop_policy = os.sched_getscheduler(0)
    # The first entry is the dummy hash, made on the caller's thread at construction.
    assert hasher.policies == [loop_policy, os.SCHED_IDLE]
    assert loop_policy != os.SCHED_IDLE


def test_the_registration_and_hashing_bounds_are_read_from_the_environment(
    private_key_pem: str,
) -> None:
    required = {"INTERNAL_TOKEN": "t", "JWT_PRIVATE_KEY": private_key_pem}
    defaults = load_settings(AuthSettings, required)
    assert defaults.register_max_attempts_per_address == 20
    assert defaults.register_rate_window_seconds == 3600
    assert defaults.argon2_max_concurrent == 4
    chosen = load_settings(
        AuthSettings,
        {
            **required,
            "REGISTER_MAX_ATTEMPTS_PER_ADDRESS": "0",
            "REGISTER_RATE_WINDOW_SECONDS": "60",
            "ARGON2_MAX_CONCURRENT": "2",
        },
    )
    assert chosen.register_max_attempts_per_address == 0
    assert chosen.register_rate_window_seconds == 60
    assert chosen.argon2_max_concurrent == 2
    with pytest.raises(SettingsError, match="ARGON2_MAX_CONCURRENT"):
        load_settings(AuthSettings, {**required, "ARGON2_MAX_CONCURRENT": "0"})
