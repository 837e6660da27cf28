"""Facturation's tables. Each part of the service declares its tables here on the one ``Base``."""

from __future__ import annotations

import enum
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    DateTime,
    Dialect,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    SmallInteger,
    String,
    Text,
    TypeDecorator,
    UniqueConstraint,
    func,
    text,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from shared import named_metadata

__all__ = [
    "UNPROCESSED_EVENTS",
    "Base",
    "Dispute",
    "Entitlement",
    "Invoice",
    "InvoiceDocument",
    "InvoiceLine",
    "Order",
    "OrderStatus",
    "ReconciliationRun",
    "Refund",
    "RefundRequest",
    "ScheduledJob",
    "StripeCustomer",
    "Subscription",
    "SubscriptionSlot",
    "UTCDateTime",
    "WebhookEvent",
    "utcnow",
]


def utcnow() -> datetime:
    return datetime.now(UTC)


class Base(DeclarativeBase):
    metadata = named_metadata()


# --- customers and checkout (issue 3) ---


class StripeCustomer(Base):
    """The one Stripe customer of a user; the unique keys make a second customer impossible."""

    __tablename__ = "stripe_customers"

    user_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    user_stripe_id: Mapped[str] = mapped_column(String(255), unique=True)
    email: Mapped[str] = mapped_column(String(320))
    created_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), default=utcnow, server_default=func.now()
    )
    stored_in_auth_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    """When auth confirmed it holds ``user_stripe_id``; null means the next call must finish."""

    __table_args__ = (
        # The worker's sweep finds the customers mapped lately through it (``invoices.py``).
        Index("ix_stripe_customers_created_at", "created_at"),
    )


class OrderStatus(enum.StrEnum):
    PENDING_PAYMENT = "pending_payment"
    PAID = "paid"
    FAILED = "failed"
    EXPIRED = "expired"
    COMPLETE = "complete"
    """A basket of free products only: nothing to pay, no Stripe session."""
    CANCELED = "canceled"
    PARTIALLY_REFUNDED = "partially_refunded"
    REFUNDED = "refunded"


class Order(Base):
    """A priced basket the user checked out; its lines are the server-side prices at that time."""

    __tablename__ = "orders"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    user_id: Mapped[str] = mapped_column(String(64), index=True)
    user_stripe_id: Mapped[str | None] = mapped_column(String(255))
    stripe_checkout_session_id: Mapped[str | None] = mapped_column(String(255), unique=True)
    status: Mapped[str] = mapped_column(String(32))
    amount_total: Mapped[int] = mapped_column(Integer)
    currency: Mapped[str] = mapped_column(String(3))
    lines: Mapped[list[dict[str, Any]]] = mapped_column(JSON)
    stripe_invoice_id: Mapped[str | None] = mapped_column(String(255), index=True)
    created_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), default=utcnow, server_default=func.now()
    )
    updated_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), default=utcnow, onupdate=utcnow, server_default=func.now()
    )
    # --- orders, fulfilment and refunds (issue 10, migration 0004) ---
    stripe_payment_intent_id: Mapped[str | None] = mapped_column(String(255), index=True)
    """The payment intent that paid the order: what refunds and disputes name."""
    amount_refunded: Mapped[int] = mapped_column(BigInteger, default=0, server_default="0")
    """The sum of the order's succeeded refunds, recomputed from ``refunds`` on every change."""
    fulfilled_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    """Set once by the fulfil step's conditional UPDATE: the record that it ran."""
    # --- subscriptions (issue 11, migration 0006) ---
    mode: Mapped[str] = mapped_column(String(16), default="payment", server_default="payment")
    """Checkout's ``mode``: ``payment`` (products granted by the fulfil step) or
    ``subscription`` (the plan is granted by the subscription, not by the order)."""


# --- webhooks, journal and invoices (issue 4) ---


class UTCDateTime(TypeDecorator[datetime]):
    """Aware UTC datetimes on both backends (SQLite hands back naive values otherwise)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("UTCDateTime needs an aware datetime")
        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


UNPROCESSED_EVENTS = "processed_at IS NULL"
"""The journal's events still waiting or being applied (a finished one, processed, ignored or
failed, has its ``processed_at``), as the partial index on them states it: a query names them in
these very words (no bound parameters), or the planner cannot use it. Not by their status: the
claim's conditions would imply it, and the planner could read the backlog through that index."""


class WebhookEvent(Base):
    """One Stripe event as received, stored once by its id: the webhook journal."""

    __tablename__ = "webhook_events"

    id: Mapped[str] = mapped_column(String(255), primary_key=True)
    type: Mapped[str] = mapped_column(String(128))
    api_version: Mapped[str | None] = mapped_column(String(64))
    created: Mapped[int] = mapped_column(BigInteger)
    """Stripe's event time (unix seconds): the order of invoice snapshots."""
    livemode: Mapped[bool] = mapped_column(Boolean)
    payload: Mapped[str] = mapped_column(Text)
    """The body exactly as signed by Stripe."""
    received_at: Mapped[datetime] = mapped_column(UTCDateTime())
    status: Mapped[str] = mapped_column(String(16))
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    last_error: Mapped[str | None] = mapped_column(Text)
    processed_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    next_attempt_at: Mapped[datetime] = mapped_column(UTCDateTime())
    locked_until: Mapped[datetime | None] = mapped_column(UTCDateTime())
    """The lease of the worker processing it; once past, a crashed attempt is taken again."""
    claim_token: Mapped[str | None] = mapped_column(String(32))

    __table_args__ = (
        # The claim's order, whole: without ``created`` the planner sorted the candidates, all
        # of them when its statistics said few were pending (migration 0011).
        Index(
            "ix_webhook_events_status_next_attempt_at_created",
            "status",
            "next_attempt_at",
            "created",
        ),
        Index("ix_webhook_events_type", "type"),
        Index("ix_webhook_events_received_at", "received_at"),
        # The backlog alone, for the age of its oldest event (``journal``).
        Index(
            "ix_webhook_events_unfinished_received_at",
            "received_at",
            postgresql_where=text(UNPROCESSED_EVENTS),
            sqlite_where=text(UNPROCESSED_EVENTS),
        ),
    )


class Invoice(Base):
    """The newest known snapshot of one Stripe invoice."""

    __tablename__ = "invoices"

    id: Mapped[str] = mapped_column(String(255), primary_key=True)
    """Stripe's invoice id (``in_...``), also the id in the API."""
    user_id: Mapped[str | None] = mapped_column(String(64))
    """``None`` until the customer's user is known."""
    customer: Mapped[str | None] = mapped_column(String(255))
    number: Mapped[str | None] = mapped_column(String(255))
    status: Mapped[str | None] = mapped_column(String(32))
    currency: Mapped[str] = mapped_column(String(3))
    amount_due: Mapped[int] = mapped_column(BigInteger)
    amount_paid: Mapped[int] = mapped_column(BigInteger)
    amount_remaining: Mapped[int] = mapped_column(BigInteger)
    subtotal: Mapped[int] = mapped_column(BigInteger)
    total: Mapped[int] = mapped_column(BigInteger)
    hosted_invoice_url: Mapped[str | None] = mapped_column(Text)
    invoice_pdf: Mapped[str | None] = mapped_column(Text)
    period_start: Mapped[int | None] = mapped_column(BigInteger)
    period_end: Mapped[int | None] = mapped_column(BigInteger)
    created: Mapped[int] = mapped_column(BigInteger)
    status_transitions: Mapped[dict[str, Any]] = mapped_column(JSON)
    raw: Mapped[dict[str, Any]] = mapped_column(JSON)
    snapshot_created: Mapped[int] = mapped_column(BigInteger)
    """The time of the event that carried this snapshot; a stored newer one is never replaced."""
    status_rank: Mapped[int] = mapped_column(SmallInteger)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())

    __table_args__ = (
        Index("ix_invoices_user_id_created", "user_id", "created"),
        Index("ix_invoices_customer", "customer"),
    )


class InvoiceLine(Base):
    __tablename__ = "invoice_lines"

    invoice_id: Mapped[str] = mapped_column(
        String(255), ForeignKey("invoices.id", ondelete="CASCADE"), primary_key=True
    )
    id: Mapped[str] = mapped_column(String(255), primary_key=True)
    position: Mapped[int] = mapped_column(Integer)
    description: Mapped[str | None] = mapped_column(Text)
    amount: Mapped[int] = mapped_column(BigInteger)
    currency: Mapped[str] = mapped_column(String(3))
    quantity: Mapped[int | None] = mapped_column(BigInteger)
    price: Mapped[str | None] = mapped_column(String(255))
    period_start: Mapped[int | None] = mapped_column(BigInteger)
    period_end: Mapped[int | None] = mapped_column(BigInteger)
    raw: Mapped[dict[str, Any]] = mapped_column(JSON)


# --- invoice documents (issue 13) ---


class InvoiceDocument(Base):
    """The PDF issued for one invoice in one state; a later state adds a row, never replaces one.

    The unique key on ``(invoice_id, state)`` is what makes a document exist once per state."""

    __tablename__ = "invoice_documents"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    invoice_id: Mapped[str] = mapped_column(
        String(255), ForeignKey("invoices.id", ondelete="CASCADE")
    )
    state: Mapped[str] = mapped_column(String(32))
    """The invoice's status when the document was rendered: open, paid, void, uncollectible."""
    number: Mapped[str] = mapped_column(String(255))
    content: Mapped[bytes] = mapped_column(LargeBinary)
    sha256: Mapped[str] = mapped_column(String(64))
    """Hex SHA-256 of ``content``: the audit checksum and the HTTP ETag."""
    size: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)

    __table_args__ = (UniqueConstraint("invoice_id", "state"),)


# --- entitlements, refunds and disputes (issue 10) ---


class Entitlement(Base):
    """A product a user may use, granted by a source: an order (or, later, a subscription).

    One row per (source, source_id, product_id): granting twice is impossible by construction.
    """

    __tablename__ = "entitlements"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    user_id: Mapped[str] = mapped_column(String(64))
    product_id: Mapped[str] = mapped_column(String(64))
    status: Mapped[str] = mapped_column(String(16))
    source: Mapped[str] = mapped_column(String(16))
    source_id: Mapped[str] = mapped_column(String(255))
    granted_at: Mapped[datetime] = mapped_column(UTCDateTime())
    ends_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())

    __table_args__ = (
        UniqueConstraint(
            "source", "source_id", "product_id", name="uq_entitlements_source_source_id_product_id"
        ),
        Index("ix_entitlements_user_id_status", "user_id", "status"),
    )


class _PaymentSnapshot:
    """The columns a refund and a dispute share: the newest known snapshot of one Stripe object
    about an order's payment, ranked by ``status_rank`` then ``snapshot_created``."""

    id: Mapped[str] = mapped_column(String(255), primary_key=True)
    order_id: Mapped[str | None] = mapped_column(String(64), ForeignKey("orders.id"), index=True)
    """``None`` until an order is known to have been paid by ``payment_intent``."""
    payment_intent: Mapped[str | None] = mapped_column(String(255), index=True)
    charge: Mapped[str | None] = mapped_column(String(255))
    amount: Mapped[int] = mapped_column(BigInteger)
    currency: Mapped[str] = mapped_column(String(3))
    status: Mapped[str] = mapped_column(String(32))
    reason: Mapped[str | None] = mapped_column(String(64))
    snapshot_created: Mapped[int] = mapped_column(BigInteger)
    status_rank: Mapped[int] = mapped_column(SmallInteger)
    raw: Mapped[dict[str, Any]] = mapped_column(JSON)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), index=True)
    """Indexed for the worker's sweep, which looks at the ones stored lately (``refunds.py``)."""


class Refund(_PaymentSnapshot, Base):
    """The newest known snapshot of one Stripe refund (``re_...``) of an order."""

    __tablename__ = "refunds"

    created: Mapped[int] = mapped_column(BigInteger)


class RefundRequest(Base):
    """One ``Idempotency-Key`` of the operations refund route: the same key is the same refund."""

    __tablename__ = "refund_requests"

    order_id: Mapped[str] = mapped_column(String(64), ForeignKey("orders.id"), primary_key=True)
    idempotency_key: Mapped[str] = mapped_column(String(255), primary_key=True)
    request_hash: Mapped[str] = mapped_column(String(64))
    refund_id: Mapped[str | None] = mapped_column(String(255))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())


class Dispute(_PaymentSnapshot, Base):
    """The newest known snapshot of one Stripe dispute (``du_...``) of an order's payment."""

    __tablename__ = "disputes"


# --- catch-up, reconciliation, journal retention (issue 12) ---


class ScheduledJob(Base):
    """A periodic job's lease (one replica at a time runs it) and, for a catch-up type group,
    its cursor in Stripe's event list."""

    __tablename__ = "scheduled_jobs"

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    lease_owner: Mapped[str | None] = mapped_column(String(64))
    lease_until: Mapped[datetime | None] = mapped_column(UTCDateTime())
    cursor: Mapped[int | None] = mapped_column(BigInteger)
    """Catch-up: every event created before this (unix seconds) is journaled."""
    resume_after: Mapped[str | None] = mapped_column(String(255))
    """Catch-up: the last event of the last page a pass recorded, while the pass is unfinished."""
    resume_upper: Mapped[int | None] = mapped_column(BigInteger)
    """Catch-up: the newest event an unfinished pass saw; the cursor once the pass ends."""
    last_success_at: Mapped[datetime | None] = mapped_column(UTCDateTime())


class ReconciliationRun(Base):
    """What one reconciliation run checked, found and corrected."""

    __tablename__ = "reconciliation_runs"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    started_at: Mapped[datetime] = mapped_column(UTCDateTime())
    finished_at: Mapped[datetime] = mapped_column(UTCDateTime(), index=True)
    complete: Mapped[bool] = mapped_column(Boolean)
    """``False`` when Stripe failed mid-run: the orders not reached are checked next run."""
    checked: Mapped[int] = mapped_column(Integer)
    drifted: Mapped[int] = mapped_column(Integer)
    fixed: Mapped[int] = mapped_column(Integer)
    items: Mapped[list[dict[str, Any]]] = mapped_column(JSON)


# --- subscriptions (issue 11) ---


class Subscription(Base):
    """The newest known snapshot of one Stripe subscription (``sub_...``)."""

    __tablename__ = "subscriptions"

    id: Mapped[str] = mapped_column(String(255), primary_key=True)
    user_id: Mapped[str | None] = mapped_column(String(64), index=True)
    """From ``metadata.user_id``, else the customer's user; ``None`` while neither is known."""
    customer: Mapped[str | None] = mapped_column(String(255), index=True)
    product_id: Mapped[str | None] = mapped_column(String(64))
    """The catalog plan (``metadata.product_id``)."""
    order_id: Mapped[str | None] = mapped_column(String(64))
    status: Mapped[str] = mapped_column(String(32))
    current_period_end: Mapped[int | None] = mapped_column(BigInteger)
    """``items.data[0].current_period_end`` (API 2026-10-28 has no top-level period)."""
    cancel_at_period_end: Mapped[bool] = mapped_column(Boolean)
    canceled_at: Mapped[int | None] = mapped_column(BigInteger)
    ended_at: Mapped[int | None] = mapped_column(BigInteger)
    created: Mapped[int] = mapped_column(BigInteger)
    raw: Mapped[dict[str, Any]] = mapped_column(JSON)
    snapshot_ended: Mapped[bool] = mapped_column(Boolean)
    """The snapshot is final (canceled, incomplete_expired): the first key of "newest"."""
    snapshot_created: Mapped[int] = mapped_column(BigInteger)
    snapshot_period_end: Mapped[int] = mapped_column(BigInteger)
    status_rank: Mapped[int] = mapped_column(SmallInteger)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())


class SubscriptionSlot(Base):
    """A user's one subscription place: held by an open subscription checkout or by a live
    subscription. The primary key on ``user_id`` is what refuses a second one."""

    __tablename__ = "subscription_slots"

    user_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    holder: Mapped[str] = mapped_column(String(64))
    """The order id of the checkout that took the slot: takeovers are conditional on it."""
    checkout_session_id: Mapped[str | None] = mapped_column(String(255))
    checkout_expires_at: Mapped[int | None] = mapped_column(BigInteger)
    subscription_id: Mapped[str | None] = mapped_column(String(255))
    """Set once the subscription exists; the slot then lasts until it ends."""
    taken_at: Mapped[datetime] = mapped_column(UTCDateTime())
