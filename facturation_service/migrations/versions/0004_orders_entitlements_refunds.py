"""Orders fulfilled once: entitlements, refunds, refund requests and disputes.

Revision ID: 0004
Revises: 0002
Create Date: 2026-11-30
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("orders") as batch:
        batch.add_column(sa.Column("stripe_payment_intent_id", sa.String(255), nullable=True))
        batch.add_column(
            sa.Column("amount_refunded", sa.BigInteger(), nullable=False, server_default="0")
        )
        batch.add_column(sa.Column("fulfilled_at", sa.DateTime(timezone=True), nullable=True))
        batch.create_index("ix_orders_stripe_payment_intent_id", ["stripe_payment_intent_id"])
    op.create_table(
        "entitlements",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("user_id", sa.String(64), nullable=False),
        sa.Column("product_id", sa.String(64), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("source", sa.String(16), nullable=False),
        sa.Column("source_id", sa.String(255), nullable=False),
        sa.Column("granted_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("ends_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_entitlements"),
        sa.UniqueConstraint(
            "source",
            "source_id",
            "product_id",
            name="uq_entitlements_source_source_id_product_id",
        ),
    )
    op.create_index("ix_entitlements_user_id_status", "entitlements", ["user_id", "status"])
    op.create_table(
        "refunds",
        sa.Column("id", sa.String(255), nullable=False),
        sa.Column("order_id", sa.String(64), nullable=True),
        sa.Column("payment_intent", sa.String(255), nullable=True),
        sa.Column("charge", sa.String(255), nullable=True),
        sa.Column("amount", sa.BigInteger(), nullable=False),
        sa.Column("currency", sa.String(3), nullable=False),
        sa.Column("status", sa.String(32), nullable=False),
        sa.Column("reason", sa.String(64), nullable=True),
        sa.Column("created", sa.BigInteger(), nullable=False),
        sa.Column("snapshot_created", sa.BigInteger(), nullable=False),
        sa.Column("status_rank", sa.SmallInteger(), nullable=False),
        sa.Column("raw", sa.JSON(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["order_id"], ["orders.id"], name="fk_refunds_order_id_orders"),
        sa.PrimaryKeyConstraint("id", name="pk_refunds"),
    )
    op.create_index("ix_refunds_order_id", "refunds", ["order_id"])
    op.create_index("ix_refunds_payment_intent", "refunds", ["payment_intent"])
    op.create_table(
        "refund_requests",
        sa.Column("order_id", sa.String(64), nullable=False),
        sa.Column("idempotency_key", sa.String(255), nullable=False),
        sa.Column("request_hash", sa.String(64), nullable=False),
        sa.Column("refund_id", sa.String(255), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["order_id"], ["orders.id"], name="fk_refund_requests_order_id_orders"
        ),
        sa.PrimaryKeyConstraint("order_id", "idempotency_key", name="pk_refund_requests"),
    )
    op.create_table(
        "disputes",
        sa.Column("id", sa.String(255), nullable=False),
        sa.Column("order_id", sa.String(64), nullable=True),
        sa.Column("payment_intent", sa.String(255), nullable=True),
        sa.Column("charge", sa.String(255), nullable=True),
        sa.Column("amount", sa.BigInteger(), nullable=False),
        sa.Column("currency", sa.String(3), nullable=False),
        sa.Column("status", sa.String(32), nullable=False),
        sa.Column("reason", sa.String(64), nullable=True),
        sa.Column("snapshot_created", sa.BigInteger(), nullable=False),
        sa.Column("status_rank", sa.SmallInteger(), nullable=False),
        sa.Column("raw", sa.JSON(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["order_id"], ["orders.id"], name="fk_disputes_order_id_orders"),
        sa.PrimaryKeyConstraint("id", name="pk_disputes"),
    )
    op.create_index("ix_disputes_order_id", "disputes", ["order_id"])
    op.create_index("ix_disputes_payment_intent", "disputes", ["payment_intent"])


def downgrade() -> None:
    op.drop_index("ix_disputes_payment_intent", table_name="disputes")
    op.drop_index("ix_disputes_order_id", table_name="disputes")
    op.drop_table("disputes")
    op.drop_table("refund_requests")
    op.drop_index("ix_refunds_payment_intent", table_name="refunds")
    op.drop_index("ix_refunds_order_id", table_name="refunds")
    op.drop_table("refunds")
    op.drop_index("ix_entitlements_user_id_status", table_name="entitlements")
    op.drop_table("entitlements")
    with op.batch_alter_table("orders") as batch:
        batch.drop_index("ix_orders_stripe_payment_intent_id")
        batch.drop_column("fulfilled_at")
        batch.drop_column("amount_refunded")
        batch.drop_column("stripe_payment_intent_id")
