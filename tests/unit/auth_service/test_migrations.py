from __future__ import annotations

import asyncio
from typing import Any

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect
from sqlalchemy.engine import Connection

from auth_service.models import Base
from shared import Database, upgrade_database
from shared._migrations import alembic_config
from tests.unit.auth_service.conftest import MIGRATIONS_DIR


async def _inspect(url: str, probe: Any) -> Any:
    database = Database(url)
    try:
        async with database.engine.connect() as connection:
            return await connection.run_sync(probe)
    finally:
        await database.dispose()


def _tables(connection: Connection) -> set[str]:
    return set(inspect(connection).get_table_names())


def _differences(connection: Connection) -> list[Any]:
    return list(compare_metadata(MigrationContext.configure(connection), Base.metadata))


async def test_migrations_build_the_schema_from_an_empty_database(database_url: str) -> None:
    assert await _inspect(database_url, _tables) == set()
    await asyncio.to_thread(upgrade_database, MIGRATIONS_DIR, database_url)
    assert await _inspect(database_url, _tables) == {
        "alembic_version",
        "users",
        "revoked_tokens",
        "login_attempts",
    }


async def test_the_migrated_schema_matches_the_models(database_url: str) -> None:
    await asyncio.to_thread(upgrade_database, MIGRATIONS_DIR, database_url)
    assert await _inspect(database_url, _differences) == []


async def test_migrations_downgrade_to_empty_and_upgrade_again(database_url: str) -> None:
    config = alembic_config(MIGRATIONS_DIR, database_url)
    await asyncio.to_thread(upgrade_database, MIGRATIONS_DIR, database_url)
    await asyncio.to_thread(command.downgrade, config, "base")
    assert await _inspect(database_url, _tables) == {"alembic_version"}
    await asyncio.to_thread(upgrade_database, MIGRATIONS_DIR, database_url)
    assert "users" in await _inspect(database_url, _tables)
