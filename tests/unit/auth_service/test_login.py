from __future__ import annotations

import statistics
import time
from typing import Any

import jwt
import msgspec
from argon2 import PasswordHasher
from litestar.testing import AsyncTestClient
from sqlalchemy import select

from auth_service import AuthSettings, create_app
from auth_service.models import User
from auth_service.passwords import Passwords
from shared import INTERNAL_TOKEN_HEADER, PROBLEM_MEDIA_TYPE, Database
from tests.unit.auth_service.conftest import (
    CHEAP_HASHER,
    INTERNAL_TOKEN,
    PASSWORD,
    login,
    register,
)
from tests.unit.auth_service.tokens_support import AUDIENCE, ISSUER


async def test_login_returns_a_bearer_token_signed_with_the_published_key(
    client: AsyncTestClient[Any],
) -> None:
    user = (await register(client)).json()
    before = int(time.time())
    response = await login(client)
    assert response.status_code == 200
    body = response.json()
    assert body["token_type"] == "bearer"
    assert response.headers["cache-control"] == "no-store"
    assert body["expires_in"] == 900

    jwks = (await client.get("/auth/jwks.json")).json()
    [jwk] = jwks["keys"]
    header = jwt.get_unverified_header(body["access_token"])
    assert header["alg"] == "EdDSA"
    assert header["kid"] == jwk["kid"]
    public_key = jwt.PyJWK(jwk).key
    claims = jwt.decode(
        body["access_token"], public_key, algorithms=["EdDSA"], audience=AUDIENCE, issuer=ISSUER
    )
    assert claims["sub"] == user["id"]
    assert claims["email"] == "ada@example.com"
    assert before <= claims["iat"] <= claims["exp"] - 900 + 1
    assert len(claims["jti"]) >= 32


async def test_each_login_gets_its_own_token_id(client: AsyncTestClient[Any]) -> None:
    await register(client)
    first = jwt.decode(
        (await login(client)).json()["access_token"], options={"verify_signature": False}
    )
    second = jwt.decode(
        (await login(client)).json()["access_token"], options={"verify_signature": False}
    )
    assert first["jti"] != second["jti"]


async def test_login_normalises_the_email(client: AsyncTestClient[Any]) -> None:
    await register(client)
    assert (await login(client, email="  ADA@Example.com ")).status_code == 200


async def test_wrong_password_and_unknown_email_get_the_same_401(
    client: AsyncTestClient[Any],
) -> None:
    await register(client)
    wrong_password = await login(client, password="not the password")
    unknown_email = await login(client, email="nobody@example.com")
    for response in (wrong_password, unknown_email):
        assert response.status_code == 401
        assert response.headers["content-type"] == PROBLEM_MEDIA_TYPE
        assert "access_token" not in response.text
    assert wrong_password.json()["detail"] == unknown_email.json()["detail"]


async def test_an_oversized_password_is_refused_without_hashing_it(
    client: AsyncTestClient[Any],
) -> None:
    await register(client)
    response = await login(client, password=PASSWORD + "x" * 2000)
    assert response.status_code == 401


async def test_an_unknown_user_costs_as_much_time_as_a_wrong_password() -> None:
    # Costly enough that the hash, not scheduling noise, dominates each measurement.
    passwords = Passwords(PasswordHasher(time_cost=2, memory_cost=8192, parallelism=1))
    stored = await passwords.hash(PASSWORD)

    # CPU time of this process (the hash runs in one of its threads), taken in turns: another
    # process busy on the machine neither stretches one kind nor the other (wall-clock medians
    # taken one kind after the other failed when a test suite ran beside this one).
    async def cost(password_hash: str | None) -> float:
        started = time.process_time()
        assert not await passwords.verify(password_hash, "a wrong password")
        return time.process_time() - started

    wrong: list[float] = []
    unknown: list[float] = []
    for _ in range(15):
        wrong.append(await cost(stored))
        unknown.append(await cost(None))
    assert 0.5 < statistics.median(unknown) / statistics.median(wrong) < 2.0


async def test_verify_accepts_the_right_password_only() -> None:
    passwords = Passwords(CHEAP_HASHER)
    stored = await passwords.hash(PASSWORD)
    assert await passwords.verify(stored, PASSWORD)
    assert not await passwords.verify(stored, PASSWORD + "!")
    assert not await passwords.verify("not-a-hash", PASSWORD)


async def test_login_upgrades_a_hash_made_with_weaker_parameters(
    settings: AuthSettings, auth_database_url: str
) -> None:
    async with AsyncTestClient(create_app(settings)) as weak:
        weak.headers[INTERNAL_TOKEN_HEADER] = INTERNAL_TOKEN
        await register(weak)
    stronger = msgspec.structs.replace(settings, argon2_time_cost=2)
    async with AsyncTestClient(create_app(stronger)) as client:
        client.headers[INTERNAL_TOKEN_HEADER] = INTERNAL_TOKEN
        assert (await login(client)).status_code == 200
    database = Database(auth_database_url)
    try:
        async with database.sessionmaker() as session:
            stored = await session.scalar(select(User.password_hash))
    finally:
        await database.dispose()
    assert stored is not None
    assert ",t=2," in stored
