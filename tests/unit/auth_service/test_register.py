from __future__ import annotations

import asyncio
import uuid
from typing import Any

import pytest
from litestar.testing import AsyncTestClient
from sqlalchemy import func, select

from auth_service.models import User
from shared import PROBLEM_MEDIA_TYPE, Database
from tests.unit.auth_service.conftest import PASSWORD, login, register


async def _user_count(database_url: str) -> int:
    database = Database(database_url)
    try:
        async with database.sessionmaker() as session:
            return int(await session.scalar(select(func.count()).select_from(User)) or 0)
    finally:
        await database.dispose()


async def test_register_returns_the_user_with_a_normalised_email(
    client: AsyncTestClient[Any],
) -> None:
    response = await register(client, email="  Ada.Lovelace@Example.COM ", name=" Ada ")
    assert response.status_code == 201
    body = response.json()
    assert body == {
        "id": body["id"],
        "email": "ada.lovelace@example.com",
        "name": "Ada",
        "user_stripe_id": None,
    }
    assert str(uuid.UUID(body["id"])) == body["id"]


async def test_the_same_email_in_another_case_is_a_conflict(
    client: AsyncTestClient[Any], auth_database_url: str
) -> None:
    assert (await register(client, email="ada@example.com")).status_code == 201
    response = await register(client, email=" ADA@example.com", password="another password")
    assert response.status_code == 409
    assert response.headers["content-type"] == PROBLEM_MEDIA_TYPE
    assert await _user_count(auth_database_url) == 1
    # The first password still works: the conflicting registration changed nothing.
    assert (await login(client, password=PASSWORD)).status_code == 200


async def test_concurrent_registrations_of_one_email_create_one_user(
    client: AsyncTestClient[Any], auth_database_url: str
) -> None:
    responses = await asyncio.gather(*(register(client) for _ in range(5)))
    assert sorted(r.status_code for r in responses) == [201, 409, 409, 409, 409]
    assert await _user_count(auth_database_url) == 1


async def test_a_password_shorter_than_ten_characters_is_refused(
    client: AsyncTestClient[Any], auth_database_url: str
) -> None:
    response = await register(client, password="123456789")
    assert response.status_code == 422
    assert response.headers["content-type"] == PROBLEM_MEDIA_TYPE
    assert "10 characters" in response.json()["detail"]
    assert await _user_count(auth_database_url) == 0


async def test_a_password_of_exactly_ten_characters_is_accepted(
    client: AsyncTestClient[Any],
) -> None:
    assert (await register(client, password="0123456789")).status_code == 201


@pytest.mark.parametrize(
    ("email", "name"),
    [
        ("not-an-email", "Ada"),
        ("ada@localhost", "Ada"),
        ("ada lovelace@example.com", "Ada"),
        ("adä@example.com", "Ada"),
        ("ada@example.com", "   "),
        ("ada@example.com", "x" * 201),
    ],
)
async def test_invalid_email_or_name_is_unprocessable(
    client: AsyncTestClient[Any], auth_database_url: str, email: str, name: str
) -> None:
    response = await register(client, email=email, name=name)
    assert response.status_code == 422
    assert await _user_count(auth_database_url) == 0


async def test_a_body_missing_a_field_is_a_bad_request(client: AsyncTestClient[Any]) -> None:
    response = await client.post("/auth/register", json={"email": "ada@example.com"})
    assert response.status_code == 400
    assert response.headers["content-type"] == PROBLEM_MEDIA_TYPE


async def test_the_password_is_stored_as_an_argon2id_hash(
    client: AsyncTestClient[Any], auth_database_url: str
) -> None:
    await register(client)
    database = Database(auth_database_url)
    try:
        async with database.sessionmaker() as session:
            stored = await session.scalar(select(User.password_hash))
    finally:
        await database.dispose()
    assert stored is not None
    assert stored.startswith("$argon2id$")
    assert PASSWORD not in stored


async def test_register_without_the_internal_credential_is_refused(
    client: AsyncTestClient[Any], auth_database_url: str
) -> None:
    del client.headers["X-Internal-Token"]
    response = await register(client)
    assert response.status_code == 401
    assert await _user_count(auth_database_url) == 0
