from __future__ import annotations

import asyncio
from typing import Any

import msgspec
import pytest
from litestar.testing import AsyncTestClient

from auth_service import AuthSettings, create_app
from auth_service.ratelimit import LoginRateLimiter
from shared import INTERNAL_TOKEN_HEADER, PROBLEM_MEDIA_TYPE, Database, TooManyRequestsError
from tests.unit.auth_service.conftest import INTERNAL_TOKEN, PASSWORD, login, register

FROM_A = {"X-Forwarded-For": "203.0.113.7"}
FROM_B = {"X-Forwarded-For": "198.51.100.9"}


async def test_the_sixth_failure_within_a_minute_locks_the_account_even_for_the_right_password(
    client: AsyncTestClient[Any],
) -> None:
    await register(client)
    for _ in range(5):
        assert (await login(client, password="wrong password")).status_code == 401
    refused = await login(client, password=PASSWORD)
    assert refused.status_code == 429
    assert refused.headers["content-type"] == PROBLEM_MEDIA_TYPE
    assert 1 <= int(refused.headers["retry-after"]) <= 60
    assert "access_token" not in refused.text


async def test_the_account_lock_holds_across_client_addresses(
    client: AsyncTestClient[Any],
) -> None:
    await register(client)
    for _ in range(5):
        assert (await login(client, password="wrong password", headers=FROM_A)).status_code == 401
    assert (await login(client, password="wrong password", headers=FROM_B)).status_code == 429


async def test_a_successful_login_forgives_earlier_failures(client: AsyncTestClient[Any]) -> None:
    await register(client)
    for _ in range(4):
        assert (await login(client, password="wrong password")).status_code == 401
    assert (await login(client)).status_code == 200
    for _ in range(5):
        assert (await login(client, password="wrong password")).status_code == 401


async def test_one_address_is_limited_to_twenty_attempts_a_minute_across_accounts(
    client: AsyncTestClient[Any],
) -> None:
    for attempt in range(20):
        response = await login(client, email=f"user{attempt}@example.com", headers=FROM_A)
        assert response.status_code == 401
    refused = await login(client, email="another@example.com", headers=FROM_A)
    assert refused.status_code == 429
    assert int(refused.headers["retry-after"]) >= 1
    # Another address is not affected.
    assert (await login(client, email="another@example.com", headers=FROM_B)).status_code == 401


async def test_a_concurrent_burst_never_gets_more_than_five_password_checks(
    client: AsyncTestClient[Any],
) -> None:
    await register(client)
    responses = await asyncio.gather(
        *(login(client, password="wrong password", headers=FROM_A) for _ in range(12))
    )
    statuses = [response.status_code for response in responses]
    assert statuses.count(401) <= 5
    assert statuses.count(429) >= 7


async def test_a_forged_forwarded_address_is_ignored_in_favour_of_the_peer(
    client: AsyncTestClient[Any],
) -> None:
    for attempt in range(20):
        headers = {"X-Forwarded-For": "not-an-address"}
        response = await login(client, email=f"user{attempt}@example.com", headers=headers)
        assert response.status_code == 401
    # All of them counted against the socket peer, which is also this one's address.
    assert (await login(client, email="last@example.com")).status_code == 429


async def test_limits_set_to_zero_are_off(settings: AuthSettings) -> None:
    unlimited = msgspec.structs.replace(
        settings, login_max_failures_per_account=0, login_max_attempts_per_address=0
    )
    async with AsyncTestClient(create_app(unlimited)) as client:
        client.headers[INTERNAL_TOKEN_HEADER] = INTERNAL_TOKEN
        await register(client)
        for _ in range(25):
            assert (await login(client, password="wrong password")).status_code == 401


async def test_attempts_older_than_the_window_no_longer_count(auth_database_url: str) -> None:
    now = [1_000_000.0]
    database = Database(auth_database_url)
    limiter = LoginRateLimiter(
        database.engine,
        max_failures_per_account=2,
        max_attempts_per_address=100,
        window_seconds=60,
        clock=lambda: now[0],
    )
    try:
        await limiter.record_account_attempt("ada@example.com")
        now[0] += 30
        await limiter.record_account_attempt("ada@example.com")
        with pytest.raises(TooManyRequestsError) as refused:
            await limiter.record_account_attempt("ada@example.com")
        assert refused.value.headers["Retry-After"] == "30"
        now[0] += 31  # the first attempt has left the window
        await limiter.record_account_attempt("ada@example.com")
        now[0] += 120
        assert await limiter.purge() == 3
    finally:
        await database.dispose()


async def test_replicas_on_one_database_share_the_counts(settings: AuthSettings) -> None:
    async with (
        AsyncTestClient(create_app(settings)) as first,
        AsyncTestClient(create_app(settings)) as second,
    ):
        for replica in (first, second):
            replica.headers[INTERNAL_TOKEN_HEADER] = INTERNAL_TOKEN
        await register(first)
        for replica in (first, second, first, second, first):
            assert (await login(replica, password="wrong password")).status_code == 401
        assert (await login(second)).status_code == 429
