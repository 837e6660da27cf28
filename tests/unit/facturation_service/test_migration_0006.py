"""Migration 0006 (subscriptions, subscription slots, ``orders.mode``) goes down to 0005 and up
again; ``test_migration_0004.py`` proves the migrated schema matches the models."""

from __future__ import annotations

import asyncio
from typing import Any

from alembic import command
from sqlalchemy import inspect, text
from sqlalchemy.engine import Connection

from shared import Database, upgrade_database
from shared._migrations import alembic_config
from tests.unit.facturation_service.conftest import MIGRATIONS

ISSUE_11_TABLES = {"subscriptions", "subscription_slots"}


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


async def test_0006_goes_down_to_0005_and_up_again_and_old_orders_are_payment_mode(
    database_url: str,
) -> None:
    config = alembic_config(MIGRATIONS, database_url)
    await asyncio.to_thread(upgrade_database, MIGRATIONS, database_url)
    await asyncio.to_thread(command.downgrade, config, "0005")
    assert not ISSUE_11_TABLES & await _inspect(database_url, _tables)
    assert "mode" not in await _inspect(database_url, _order_columns)
    database = Database(database_url)
    try:
        async with database.engine.begin() as connection:
            await connection.execute(
                text(
                    "INSERT INTO orders (id, user_id, status, amount_total, currency, lines,"
                    " created_at, updated_at, amount_refunded) VALUES ('ord_old', 'u1',"
                    " 'paid', 100, 'eur', '[]', CURRENT_TIMESTAMP, CURRENT_TIMESTAMP, 0)"
                )
            )
    finally:
        await database.dispose()

    await asyncio.to_thread(upgrade_database, MIGRATIONS, database_url)

    assert await _inspect(database_url, _tables) >= ISSUE_11_TABLES
    database = Database(database_url)
    try:
        async with database.engine.connect() as connection:
            mode = await connection.scalar(text("SELECT mode FROM orders WHERE id = 'ord_old'"))
    finally:
        await database.dispose()
    assert mode == "payment"
