from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from argon2 import PasswordHasher
from litestar.testing import AsyncTestClient

import auth_service
from auth_service import AuthSettings, create_app, generate_private_key_pem
from shared import INTERNAL_TOKEN_HEADER
from tests.support.databases import migrated_database

MIGRATIONS_DIR = Path(auth_service.__file__).resolve().parent / "migrations"
INTERNAL_TOKEN = "test-internal-token"
PASSWORD = "correct horse battery"
CHEAP_HASHER = PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)


@pytest.fixture(scope="session")
def private_key_pem() -> str:
    return generate_private_key_pem()


@pytest.fixture
async def auth_database_url(tmp_path: Path) -> AsyncIterator[str]:
    async with migrated_database("auth", MIGRATIONS_DIR, tmp_path) as url:
        yield url


@pytest.fixture
def settings(auth_database_url: str, private_key_pem: str) -> AuthSettings:
    return AuthSettings(
        internal_token=INTERNAL_TOKEN,
        jwt_private_key=private_key_pem,
        database_url=auth_database_url,
        # Cheap hashes keep the suite fast; the algorithm and the code path are the same.
        argon2_time_cost=1,
        argon2_memory_kib=1024,
        argon2_parallelism=1,
    )


@pytest.fixture
async def client(settings: AuthSettings) -> AsyncIterator[AsyncTestClient[Any]]:
    """A client that calls as the gateway does: with the internal credential."""
    async with AsyncTestClient(create_app(settings)) as test_client:
        test_client.headers[INTERNAL_TOKEN_HEADER] = INTERNAL_TOKEN
        yield test_client


async def register(
    client: httpx.AsyncClient,
    email: str = "ada@example.com",
    password: str = PASSWORD,
    name: str = "Ada Lovelace",
) -> httpx.Response:
    return await client.post(
        "/auth/register", json={"email": email, "password": password, "name": name}
    )


async def login(
    client: httpx.AsyncClient,
    email: str = "ada@example.com",
    password: str = PASSWORD,
    headers: dict[str, str] | None = None,
) -> httpx.Response:
    return await client.post(
        "/auth/login", json={"email": email, "password": password}, headers=headers
    )


async def access_token(client: httpx.AsyncClient, email: str = "ada@example.com") -> str:
    """Register (if needed) and log in; the bearer token."""
    await register(client, email=email)
    response = await login(client, email=email)
    assert response.status_code == 200, response.text
    token: str = response.json()["access_token"]
    return token
