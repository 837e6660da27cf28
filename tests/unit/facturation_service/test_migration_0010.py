"""Migration 0010: on PostgreSQL a journaled Stripe event's body stays, compressed, inside its row
(no TOAST chunks to write or read), and the raw invoice snapshots likewise; back to the default
storage on the way down; SQLite is untouched."""

from __future__ import annotations

import asyncio

import msgspec
from alembic import command
from sqlalchemy import text

from facturation_service.journal import EventEnvelope, JournalWriter
from shared import Database, upgrade_database
from shared._migrations import alembic_config
from tests.support import stripe_events
from tests.unit.facturation_service.conftest import MIGRATIONS

STORAGE = text(
    "SELECT attrelid::regclass::text || '.' || attname, attstorage::text FROM pg_attribute"
    " WHERE (attrelid, attname) IN (('webhook_events'::regclass, 'payload'),"
    " ('invoices'::regclass, 'raw'))"
)
# A body moved to the TOAST table leaves an 18-byte pointer in its row: the row is then
# smaller than the body.
STORED = text(
    "SELECT pg_column_size(payload) AS body, pg_column_size(e.*) AS row FROM webhook_events e"
)


async def _storage(database: Database) -> dict[str, str] | None:
    """Each column's storage (``m`` main, ``x`` extended); ``None`` on SQLite."""
    async with database.engine.connect() as connection:
        if connection.dialect.name != "postgresql":
            return None
        return {str(name): str(storage) for name, storage in await connection.execute(STORAGE)}


async def test_0010_keeps_raw_bodies_compressed_in_their_rows_and_goes_back_down(
    database_url: str,
) -> None:
    await asyncio.to_thread(upgrade_database, MIGRATIONS, database_url)
    database = Database(database_url)
    try:
        after = await _storage(database)
        body = stripe_events.encode(
            stripe_events.event("invoice.paid", stripe_events.invoice("paid"))
        )
        writer = JournalWriter(database.engine)
        assert await writer.record(
            msgspec.json.decode(body, type=EventEnvelope), body.decode(), handled=True
        )
        await writer.drain()
        async with database.engine.connect() as connection:
            stored = (await connection.execute(STORED)).one() if after else None
        await asyncio.to_thread(command.downgrade, alembic_config(MIGRATIONS, database_url), "0009")
        before = await _storage(database)
    finally:
        await database.dispose()

    if after is None:
        return  # SQLite: nothing to set, and the migration ran both ways
    assert after == {"webhook_events.payload": "m", "invoices.raw": "m"}
    assert before == {"webhook_events.payload": "x", "invoices.raw": "x"}
    assert stored is not None
    assert len(body) > 6000
    assert stored.body < len(body)  # compressed ...
    assert stored.row > stored.body  # ... and kept in the row
