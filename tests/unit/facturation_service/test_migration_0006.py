"""Migration 0006 (subscriptions, subscription slots, ``orders.mode``) goes down to 0005 and up
again; ``test_migration_0004.py`` proves the migrated schema matches the models."""

from __future__ import annotations

import asyncio

from alembic import command
from sqlalchemy import text

from shared import Database, upgrade_database
from shared._migrations import alembic_config
from tests.support.migrations import columns_of, inspect_database, tables
from tests.unit.facturation_service.conftest import MIGRATIONS

ISSUE_11_TABLES = {"subscriptions", "subscription_slots"}


async def test_0006_goes_down_to_0005_and_up_again_and_old_orders_are_payment_mode(
    database_url: str,
) -> None:
    config = alembic_config(MIGRATIONS, database_url)
    await asyncio.to_thread(upgrade_database, MIGRATIONS, database_url)
    await asyncio.to_thread(command.downgrade, config, "0005")
    assert not ISSUE_11_TABLES & await inspect_database(database_url, tables)
    assert "mode" not in await inspect_database(database_url, columns_of("orders"))
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

    assert await inspect_database(database_url, tables) >= ISSUE_11_TABLES
    database = Database(database_url)
    try:
        async with database.engine.connect() as connection:
            mode = await connection.scalar(text("SELECT mode FROM orders WHERE id = 'ord_old'"))
    finally:
        await database.dispose()
    assert mode == "payment"
