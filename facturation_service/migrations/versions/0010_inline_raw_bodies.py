"""PostgreSQL keeps the journal's raw events and the invoices' raw snapshots compressed inside
their rows instead of in the TOAST table.

A Stripe event's body (~6.4 kB) compresses with lz4 to about 2.6 kB: still over the 2 kB
threshold, so the default storage (``EXTENDED``) then moved it out of the row, into two chunks
of the table's TOAST relation, each a heap tuple and an index entry of its own. ``MAIN`` keeps
it compressed in the row (it leaves the row only when the row would not fit a page): the
server's CPU per journaled event went from 68-78 to 58-65 µs, and its WAL from 3,389 to 3,104
bytes (``docs/benchmarks.md``); reading a body back needs no TOAST lookup either. Rows already
stored stay where they are and readable. SQLite has no such setting.

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-01
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

COLUMNS = (("webhook_events", "payload"), ("invoices", "raw"))


def _set_storage(storage: str) -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    for table, column in COLUMNS:
        op.execute(f"ALTER TABLE {table} ALTER COLUMN {column} SET STORAGE {storage}")


def upgrade() -> None:
    _set_storage("MAIN")


def downgrade() -> None:
    _set_storage("EXTENDED")
