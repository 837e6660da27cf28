from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest
from argon2 import PasswordHasher
from litestar.testing import AsyncTestClient
from sqlalchemy.engine import make_url

import auth_service
from auth_service import AuthSettings, create_app, generate_private_key_pem
from auth_service.models import Base
from shared import INTERNAL_TOKEN_HEADER, Database, upgrade_database
from tests.support.databases import TEST_DATABASE_URL, _dsn, using_postgres

MIGRATIONS_DIR = Path(auth_service.__file__).resolve().parent / "migrations"
INTERNAL_TOKEN = "test-internal-token"
PASSWORD = "correct horse battery"
CHEAP_HASHER = PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)


@pytest.fixture(scope="session")
def private_key_pem() -> str:
    return generate_private_key_pem()


async def _admin(statement: str) -> None:
    connection = await asyncpg.connect(_dsn(TEST_DATABASE_URL))
    try:
        await connection.execute(statement)
    finally:
        await connection.close()


@pytest.fixture(scope="session")
def migrated_template(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The auth schema, migrated once per session."""
    if not using_postgres():
        url = f"sqlite:///{tmp_path_factory.mktemp('auth-template') / 'template.db'}"
        upgrade_database(MIGRATIONS_DIR, url)
        yield url
        return
    name = f"t_authtpl_{uuid.uuid4().hex[:10]}"
    asyncio.run(_admin(f'CREATE DATABASE "{name}"'))
    try:
        url = make_url(TEST_DATABASE_URL).set(database=name).render_as_string(hide_password=False)
        upgrade_database(MIGRATIONS_DIR, url)
        yield url
    finally:
        asyncio.run(_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


@pytest.fixture
async def auth_database_url(migrated_template: str) -> str:
    """The session's migrated database, emptied: far cheaper than migrating for every test
    (``test_migrations.py`` covers the migrations themselves on fresh databases)."""
    database = Database(migrated_template)
    try:
        async with database.engine.begin() as connection:
            for table in reversed(Base.metadata.sorted_tables):
                await connection.execute(table.delete())
    finally:
        await database.dispose()
    return migrated_template


@pytest.fixture
def settings(auth_database_url: str, private_key_pem: str) -> AuthSettings:
    return AuthSettings(
        internal_token=INTERNAL_TOKEN,
        jwt_private_key=private_key_pem,
        auth_database_url=auth_database_url,
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
