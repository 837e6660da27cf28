"""Two journal indexes the planner could read a whole backlog through, replaced.

- The claim takes the due events in ``next_attempt_at, created`` order, and its index held
  ``(status, next_attempt_at)``. Without ``created`` the planner sorted the candidates, and
  when its statistics said few events were pending (taken while the journal was quiet, all
  processed, as autovacuum's ``ANALYZE`` usually finds it) it read and sorted every pending
  event on each claim of 64: 8 ms a claim behind a backlog of 20,000, the drain quadratic. The
  index now holds the whole order, ``(status, next_attempt_at, created)``.
- The backlog-age gauge's partial index (0010) had the status in its predicate, so the claim
  could read the backlog through it too, and the planner, told that it held one row, did. Its
  predicate is now ``processed_at IS NULL``: the same events (a finished event has its
  ``processed_at``), in words no claim implies.

Each built and dropped ``CONCURRENTLY`` on PostgreSQL, outside the migration's transaction. A
build that fails leaves an invalid index of that name: drop it and migrate again.

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-02
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from alembic import op

revision: str = "0011"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TABLE = "webhook_events"
_CLAIM_BEFORE = ("ix_webhook_events_status_next_attempt_at", ["status", "next_attempt_at"], None)
_CLAIM_AFTER = (
    "ix_webhook_events_status_next_attempt_at_created",
    ["status", "next_attempt_at", "created"],
    None,
)
_AGE_BEFORE = (
    "ix_webhook_events_unprocessed_received_at",
    ["received_at"],
    "status IN ('pending', 'processing')",
)
_AGE_AFTER = ("ix_webhook_events_unfinished_received_at", ["received_at"], "processed_at IS NULL")

Index = tuple[str, list[str], str | None]


def _create(index: Index) -> None:
    name, columns, where = index
    options: dict[str, Any] = {"postgresql_concurrently": True}
    if where is not None:
        options.update(postgresql_where=sa.text(where), sqlite_where=sa.text(where))
    op.create_index(name, TABLE, columns, **options)


def _drop(index: Index) -> None:
    op.drop_index(index[0], table_name=TABLE, postgresql_concurrently=True)


def upgrade() -> None:
    with op.get_context().autocommit_block():
        for before, after in ((_CLAIM_BEFORE, _CLAIM_AFTER), (_AGE_BEFORE, _AGE_AFTER)):
            _create(after)
            _drop(before)


def downgrade() -> None:
    with op.get_context().autocommit_block():
        for before, after in ((_CLAIM_BEFORE, _CLAIM_AFTER), (_AGE_BEFORE, _AGE_AFTER)):
            _create(before)
            _drop(after)
