"""PostgreSQL compresses the journal's raw events and the invoices' raw snapshots with lz4.

Every Stripe body (~6 kB) is over the 2 kB TOAST threshold, so PostgreSQL compresses it on
insert: with the default pglz that cost the server about 70 µs per journaled event, more than
the rest of its insert; lz4 does the same in a few µs and reads back faster. Rows already stored
keep pglz and stay readable. A server built without lz4 (or older than PostgreSQL 14) keeps
pglz: the setting is skipped, nothing else depends on it. SQLite has no such setting.

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-30
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

COLUMNS = (("webhook_events", "payload"), ("invoices", "raw"))


def _set_compression(method: str) -> None:
    dialect = op.get_bind().dialect
    if dialect.name != "postgresql" or (dialect.server_version_info or (0,)) < (14,):
        return
    for table, column in COLUMNS:
        # A server built without lz4 refuses the method with feature_not_supported.
        op.execute(
            f"DO $$ BEGIN ALTER TABLE {table} ALTER COLUMN {column} SET COMPRESSION {method};"
            " EXCEPTION WHEN feature_not_supported THEN NULL; END $$"
        )


def upgrade() -> None:
    _set_compression("lz4")


def downgrade() -> None:
    _set_compression("pglz")
