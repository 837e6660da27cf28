from __future__ import annotations

import asyncio

from alembic import command

from auth_service.models import Base
from shared import upgrade_database
from shared._migrations import alembic_config
from tests.support.migrations import differences_from, inspect_database, tables
from tests.unit.auth_service.conftest import MIGRATIONS_DIR


async def test_migrations_build_the_schema_from_an_empty_database(database_url: str) -> None:
    assert await inspect_database(database_url, tables) == set()
    await asyncio.to_thread(upgrade_database, MIGRATIONS_DIR, database_url)
    assert await inspect_database(database_url, tables) == {
        "alembic_version",
        "users",
        "revoked_tokens",
        "login_attempts",
    }


async def test_the_migrated_schema_matches_the_models(database_url: str) -> None:
    await asyncio.to_thread(upgrade_database, MIGRATIONS_DIR, database_url)
    assert await inspect_database(database_url, differences_from(Base.metadata)) == []


async def test_migrations_downgrade_to_empty_and_upgrade_again(database_url: str) -> None:
    config = alembic_config(MIGRATIONS_DIR, database_url)
    await asyncio.to_thread(upgrade_database, MIGRATIONS_DIR, database_url)
    await asyncio.to_thread(command.downgrade, config, "base")
    assert await inspect_database(database_url, tables) == {"alembic_version"}
    await asyncio.to_thread(upgrade_database, MIGRATIONS_DIR, database_url)
    assert "users" in await inspect_database(database_url, tables)
