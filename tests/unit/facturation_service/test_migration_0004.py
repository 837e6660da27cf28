"""Migration 0004 (orders, entitlements, refunds, disputes) builds exactly what the models
declare, and goes down to 0002 and up again."""

from __future__ import annotations

import asyncio

from alembic import command

from facturation_service.models import Base
from shared import upgrade_database
from shared._migrations import alembic_config
from tests.support.migrations import columns_of, differences_from, inspect_database, tables
from tests.unit.facturation_service.conftest import MIGRATIONS

ISSUE_10_TABLES = {"entitlements", "refunds", "refund_requests", "disputes"}


async def test_the_migrated_schema_matches_the_models(database_url: str) -> None:
    await asyncio.to_thread(upgrade_database, MIGRATIONS, database_url)

    assert await inspect_database(database_url, differences_from(Base.metadata)) == []


async def test_0004_goes_down_to_0002_and_up_again(database_url: str) -> None:
    config = alembic_config(MIGRATIONS, database_url)
    await asyncio.to_thread(upgrade_database, MIGRATIONS, database_url)

    await asyncio.to_thread(command.downgrade, config, "0002")
    assert not ISSUE_10_TABLES & await inspect_database(database_url, tables)
    assert "fulfilled_at" not in await inspect_database(database_url, columns_of("orders"))

    await asyncio.to_thread(upgrade_database, MIGRATIONS, database_url)
    assert await inspect_database(database_url, tables) >= ISSUE_10_TABLES
    assert {
        "stripe_payment_intent_id",
        "amount_refunded",
        "fulfilled_at",
    } <= await inspect_database(database_url, columns_of("orders"))
