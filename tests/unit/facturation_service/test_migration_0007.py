"""Migration 0007: on PostgreSQL the journal's raw events and the invoices' raw snapshots are
compressed with lz4 (when the server has it), and back to pglz on the way down; SQLite is
untouched."""

from __future__ import annotations

import asyncio

from alembic import command
from sqlalchemy import text

from shared import Database, upgrade_database
from shared._migrations import alembic_config
from tests.unit.facturation_service.conftest import MIGRATIONS

COMPRESSION = text(
    "SELECT attrelid::regclass::text || '.' || attname, attcompression::text FROM pg_attribute"
    " WHERE (attrelid, attname) IN (('webhook_events'::regclass, 'payload'),"
    " ('invoices'::regclass, 'raw'))"
)
LZ4_BUILT = text(
    "SELECT 1 FROM pg_settings WHERE name = 'default_toast_compression' AND 'lz4' = ANY(enumvals)"
)


async def _compression(database_url: str) -> dict[str, str] | None:
    """Each column's method (``l`` lz4, ``p`` pglz); ``None`` where lz4 cannot be set."""
    database = Database(database_url)
    try:
        async with database.engine.connect() as connection:
            if connection.dialect.name != "postgresql" or not await connection.scalar(LZ4_BUILT):
                return None
            rows = await connection.execute(COMPRESSION)
            return {str(name): str(method) for name, method in rows}
    finally:
        await database.dispose()


async def test_0007_compresses_raw_bodies_with_lz4_on_postgresql_and_goes_back_down(
    database_url: str,
) -> None:
    await asyncio.to_thread(upgrade_database, MIGRATIONS, database_url)
    after = await _compression(database_url)
    await asyncio.to_thread(command.downgrade, alembic_config(MIGRATIONS, database_url), "0006")
    before = await _compression(database_url)

    if after is None:
        return  # SQLite, or a server without lz4: nothing to set, and the migration ran
    assert after == {"webhook_events.payload": "l", "invoices.raw": "l"}
    assert before == {"webhook_events.payload": "p", "invoices.raw": "p"}
