"""An index on the customer mapping's ``created_at``: the worker's housekeeping sweep, once a
second, links the invoices of customers mapped lately instead of looking at every invoice
nobody owns (the invoices of customers that are nobody's here stay unowned forever; 200,000 of
them took PostgreSQL 210-515 ms a sweep, the indexed sweep 0.1 ms).

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-01
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index("ix_stripe_customers_created_at", "stripe_customers", ["created_at"])


def downgrade() -> None:
    op.drop_index("ix_stripe_customers_created_at", table_name="stripe_customers")
