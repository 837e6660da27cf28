"""Subscriptions: their newest snapshots, the one slot per user, and the order's checkout mode.

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-30
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("orders") as batch:
        batch.add_column(sa.Column("mode", sa.String(16), nullable=False, server_default="payment"))
    op.create_table(
        "subscriptions",
        sa.Column("id", sa.String(255), nullable=False),
        sa.Column("user_id", sa.String(64), nullable=True),
        sa.Column("customer", sa.String(255), nullable=True),
        sa.Column("product_id", sa.String(64), nullable=True),
        sa.Column("order_id", sa.String(64), nullable=True),
        sa.Column("status", sa.String(32), nullable=False),
        sa.Column("current_period_end", sa.BigInteger(), nullable=True),
        sa.Column("cancel_at_period_end", sa.Boolean(), nullable=False),
        sa.Column("canceled_at", sa.BigInteger(), nullable=True),
        sa.Column("ended_at", sa.BigInteger(), nullable=True),
        sa.Column("created", sa.BigInteger(), nullable=False),
        sa.Column("raw", sa.JSON(), nullable=False),
        sa.Column("snapshot_ended", sa.Boolean(), nullable=False),
        sa.Column("snapshot_created", sa.BigInteger(), nullable=False),
        sa.Column("snapshot_period_end", sa.BigInteger(), nullable=False),
        sa.Column("status_rank", sa.SmallInteger(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_subscriptions"),
    )
    op.create_index("ix_subscriptions_user_id", "subscriptions", ["user_id"])
    op.create_index("ix_subscriptions_customer", "subscriptions", ["customer"])
    op.create_table(
        "subscription_slots",
        sa.Column("user_id", sa.String(64), nullable=False),
        sa.Column("holder", sa.String(64), nullable=False),
        sa.Column("checkout_session_id", sa.String(255), nullable=True),
        sa.Column("checkout_expires_at", sa.BigInteger(), nullable=True),
        sa.Column("subscription_id", sa.String(255), nullable=True),
        sa.Column("taken_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("user_id", name="pk_subscription_slots"),
    )


def downgrade() -> None:
    op.drop_table("subscription_slots")
    op.drop_index("ix_subscriptions_customer", table_name="subscriptions")
    op.drop_index("ix_subscriptions_user_id", table_name="subscriptions")
    op.drop_table("subscriptions")
    with op.batch_alter_table("orders") as batch:
        batch.drop_column("mode")
