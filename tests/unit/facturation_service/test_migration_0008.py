"""Migration 0008: the index the worker's housekeeping sweep finds recently mapped customers by,
there on the way up and gone on the way down."""

from __future__ import annotations

import asyncio

from alembic import command
from sqlalchemy import inspect
from sqlalchemy.engine import Connection

from shared import upgrade_database
from shared._migrations import alembic_config
from tests.support.migrations import inspect_database
from tests.unit.facturation_service.conftest import MIGRATIONS


def _customer_indexes(connection: Connection) -> set[str]:
    return {str(index["name"]) for index in inspect(connection).get_indexes("stripe_customers")}


async def test_0008_indexes_the_mapping_created_at_and_goes_back_down(database_url: str) -> None:
    config = alembic_config(MIGRATIONS, database_url)
    await asyncio.to_thread(upgrade_database, MIGRATIONS, database_url)
    up = await inspect_database(database_url, _customer_indexes)

    await asyncio.to_thread(command.downgrade, config, "0007")
    down = await inspect_database(database_url, _customer_indexes)
    await asyncio.to_thread(command.upgrade, config, "head")
    again = await inspect_database(database_url, _customer_indexes)

    assert "ix_stripe_customers_created_at" in up
    assert "ix_stripe_customers_created_at" not in down
    assert "ix_stripe_customers_created_at" in again
