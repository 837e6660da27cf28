"""Hostile bodies on the routes that need no token (issue 15): a 4xx problem+json, no user
stored, no login attempt counted."""

from __future__ import annotations

from typing import Any

import pytest
from litestar.testing import AsyncTestClient
from sqlalchemy import func, select

from auth_service.models import LoginAttempt, User
from shared import PROBLEM_MEDIA_TYPE, Database


async def _count(database_url: str, model: Any) -> int:
    database = Database(database_url)
    try:
        async with database.sessionmaker() as session:
            return int(await session.scalar(select(func.count()).select_from(model)) or 0)
    finally:
        await database.dispose()


def deep_body(depth: int) -> bytes:
    return (
        b'{"email": "ada@example.com", "password": "correct horse battery", "name": '
        + b"[" * depth
        + b"]" * depth
        + b"}"
    )


@pytest.mark.parametrize("path", ["/auth/register", "/auth/login"])
@pytest.mark.parametrize("depth", [65, 1_000, 50_000])
async def test_a_deeply_nested_body_is_a_400_problem_and_changes_nothing(
    client: AsyncTestClient[Any], auth_database_url: str, path: str, depth: int
) -> None:
    response = await client.post(
        path, content=deep_body(depth), headers={"content-type": "application/json"}
    )

    assert response.status_code == 400
    assert response.headers["content-type"].startswith(PROBLEM_MEDIA_TYPE)
    problem = response.json()
    assert problem["status"] == 400
    assert f"at most {64}" in problem["detail"]
    assert problem["request_id"]
    assert await _count(auth_database_url, User) == 0
    assert await _count(auth_database_url, LoginAttempt) == 0


@pytest.mark.parametrize("path", ["/auth/register", "/auth/login"])
async def test_a_body_over_a_mebibyte_is_a_413_problem_and_changes_nothing(
    client: AsyncTestClient[Any], auth_database_url: str, path: str
) -> None:
    body = b'{"email": "ada@example.com", "password": "' + b"p" * 1_100_000 + b'", "name": "A"}'

    response = await client.post(path, content=body, headers={"content-type": "application/json"})

    assert response.status_code == 413
    assert response.headers["content-type"].startswith(PROBLEM_MEDIA_TYPE)
    assert response.json()["status"] == 413
    assert await _count(auth_database_url, User) == 0
    assert await _count(auth_database_url, LoginAttempt) == 0
