"""Migrations 0008 to 0011: the indexes the worker's housekeeping sweep finds recently mapped
customers, recently stored orphan refunds and disputes, and the backlog's oldest event by, and
the one its claim reads the due events by, there on the way up and gone on the way down."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import pytest
from alembic import command
from sqlalchemy import inspect
from sqlalchemy.engine import Connection

from shared import upgrade_database
from shared._migrations import alembic_config
from tests.support.migrations import inspect_database
from tests.unit.facturation_service.conftest import MIGRATIONS


def _indexes_of(table: str) -> Callable[[Connection], set[str]]:
    def probe(connection: Connection) -> set[str]:
        return {str(index["name"]) for index in inspect(connection).get_indexes(table)}

    return probe


@pytest.mark.parametrize(
    ("below", "table", "index"),
    [
        ("0007", "stripe_customers", "ix_stripe_customers_created_at"),
        ("0008", "refunds", "ix_refunds_updated_at"),
        ("0008", "disputes", "ix_disputes_updated_at"),
        ("0010", "webhook_events", "ix_webhook_events_unfinished_received_at"),
        ("0010", "webhook_events", "ix_webhook_events_status_next_attempt_at_created"),
    ],
)
async def test_a_sweep_index_is_made_on_the_way_up_and_dropped_on_the_way_down(
    database_url: str, below: str, table: str, index: str
) -> None:
    config = alembic_config(MIGRATIONS, database_url)
    await asyncio.to_thread(upgrade_database, MIGRATIONS, database_url)
    up = await inspect_database(database_url, _indexes_of(table))

    await asyncio.to_thread(command.downgrade, config, below)
    down = await inspect_database(database_url, _indexes_of(table))
    await asyncio.to_thread(command.upgrade, config, "head")
    again = await inspect_database(database_url, _indexes_of(table))

    assert index in up
    assert index not in down
    assert index in again


async def test_0011_replaces_the_journal_indexes_a_claim_could_read_a_backlog_through(
    database_url: str,
) -> None:
    config = alembic_config(MIGRATIONS, database_url)
    await asyncio.to_thread(upgrade_database, MIGRATIONS, database_url)
    head = await inspect_database(database_url, _indexes_of("webhook_events"))
    await asyncio.to_thread(command.downgrade, config, "0010")
    before = await inspect_database(database_url, _indexes_of("webhook_events"))
    await asyncio.to_thread(command.downgrade, config, "0009")
    below = await inspect_database(database_url, _indexes_of("webhook_events"))
    await asyncio.to_thread(command.upgrade, config, "head")

    replaced = {
        "ix_webhook_events_status_next_attempt_at",
        "ix_webhook_events_unprocessed_received_at",
    }
    replacing = {
        "ix_webhook_events_status_next_attempt_at_created",
        "ix_webhook_events_unfinished_received_at",
    }
    assert replacing <= head
    assert not replaced & head
    assert replaced <= before
    assert not replacing & before
    assert "ix_webhook_events_unprocessed_received_at" not in below
