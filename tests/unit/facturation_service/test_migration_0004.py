"""Migration 0004 (orders, entitlements, refunds, disputes) builds exactly what the models
declare, and goes down to 0002 and up again."""

from __future__ import annotations

import asyncio
from typing import Any

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect
from sqlalchemy.engine import Connection

from facturation_service.models import Base
from shared import Database, upgrade_database
from shared._migrations import alembic_config
from tests.unit.facturation_service.conftest import MIGRATIONS

ISSUE_10_TABLES = {"entitlements", "refunds", "refund_requests", "disputes"}


async def _inspect(url: str, probe: Any) -> Any:
    database = Database(url)
    try:
        async with database.engine.connect() as connection:
            return await connection.run_sync(probe)
    finally:
        await database.dispose()


def _tables(connection: Connection) -> set[str]:
    return set(inspect(connection).get_table_names())


def _order_columns(connection: Connection) -> set[str]:
    return {column["name"] for column in inspect(connection).get_columns("orders")}


def _differences(connection: Connection) -> list[Any]:
    return list(compare_metadata(MigrationContext.configure(connection), Base.metadata))


async def test_the_migrated_schema_matches_the_models(database_url: str) -> None:
    await asyncio.to_thread(upgrade_database, MIGRATIONS, database_url)

    assert await _inspect(database_url, _differences) == []


async def test_0004_goes_down_to_0002_and_up_again(database_url: str) -> None:
    config = alembic_config(MIGRATIONS, database_url)
    await asyncio.to_thread(upgrade_database, MIGRATIONS, database_url)

    await asyncio.to_thread(command.downgrade, config, "0002")
    assert not ISSUE_10_TABLES & await _inspect(database_url, _tables)
    assert "fulfilled_at" not in await _inspect(database_url, _order_columns)

    await asyncio.to_thread(upgrade_database, MIGRATIONS, database_url)
    assert await _inspect(database_url, _tables) >= ISSUE_10_TABLES
    assert {"stripe_payment_intent_id", "amount_refunded", "fulfilled_at"} <= await _inspect(
        database_url, _order_columns
    )
