"""Fresh databases for tests: a new PostgreSQL database per use when ``TEST_DATABASE_URL`` is set
(CI), a temporary SQLite file otherwise."""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import asyncpg
from sqlalchemy.engine import make_url

from shared import upgrade_database

TEST_DATABASE_URL = os.environ.get("TEST_DATABASE_URL", "")


def using_postgres() -> bool:
    return bool(TEST_DATABASE_URL)


def _dsn(url: str) -> str:
    parsed = make_url(url).set(drivername="postgresql")
    return parsed.render_as_string(hide_password=False)


async def terminate_connections(database_url: str) -> int:
    """Close every server connection to the PostgreSQL database of ``database_url`` (as a
    restart of the server would), each gone when this returns; how many there were."""
    admin = await asyncpg.connect(_dsn(TEST_DATABASE_URL))
    try:
        # With a timeout, each backend has exited when the call returns (not only been told to).
        terminated: int = await admin.fetchval(
            "SELECT count(pg_terminate_backend(pid, 5000)) FROM pg_stat_activity"
            " WHERE datname = $1 AND pid <> pg_backend_pid()",
            make_url(database_url).database,
        )
    finally:
        await admin.close()
    return terminated


@asynccontextmanager
async def fresh_database(name: str, tmp_dir: Path) -> AsyncIterator[str]:
    """Yield a URL to an empty database that is dropped afterwards."""
    if not using_postgres():
        yield f"sqlite:///{tmp_dir / f'{name}-{uuid.uuid4().hex[:8]}.db'}"
        return
    database = f"t_{name}_{uuid.uuid4().hex[:10]}"
    admin = await asyncpg.connect(_dsn(TEST_DATABASE_URL))
    try:
        await admin.execute(f'CREATE DATABASE "{database}"')
    finally:
        await admin.close()
    try:
        yield (
            make_url(TEST_DATABASE_URL).set(database=database).render_as_string(hide_password=False)
        )
    finally:
        admin = await asyncpg.connect(_dsn(TEST_DATABASE_URL))
        try:
            await admin.execute(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')
        finally:
            await admin.close()


@asynccontextmanager
async def migrated_database(name: str, migrations_dir: Path, tmp_dir: Path) -> AsyncIterator[str]:
    """A fresh database with the service's migrations applied, as in production."""
    async with fresh_database(name, tmp_dir) as url:
        await asyncio.to_thread(upgrade_database, migrations_dir, url)
        yield url
