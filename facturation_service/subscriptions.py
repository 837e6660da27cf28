"""Subscriptions (flow 8): Stripe's ``customer.subscription.*`` snapshots, newest wins, and what
follows from the stored one: the user's subscription slot and the plan's entitlement.

**Newest snapshot wins**, decided inside one ``INSERT ... ON CONFLICT DO UPDATE ... WHERE``
(the row lock is held while it decides), by the key

    (ended, event created, current period end, status rank)

compared as a tuple: a final snapshot (``canceled``, ``incomplete_expired``) beats every live
one, whatever its time, because a subscription never comes back; then the event's ``created``;
within one second, the later period (a renewal) wins, then the status further along
(incomplete < trialing < active < paused = past_due < unpaid < canceled = incomplete_expired).
An equal key re-applies the same state, so duplicates change nothing.

**Effects follow the stored row, never the event**: after each snapshot (applied or not) the
slot and the entitlement are brought to what the stored row says, in the same transaction, so
events applied in any order, any number of times, end in the same place:

=============================== ==================== =========================================
stored status                   slot                 entitlement (source ``subscription``)
=============================== ==================== =========================================
incomplete                      held                 none yet
active, trialing                held                 active, ``ends_at`` = period end
past_due, unpaid, paused        held                 suspended
canceled, incomplete_expired    released             expired (final), ``ends_at`` = ended_at
=============================== ==================== =========================================

A paid invoice of the subscription (``invoice.paid``) extends ``ends_at`` to its period's end;
``ends_at`` only ever moves forward while the entitlement lives.
"""

from __future__ import annotations

import hashlib
import time
from datetime import UTC, datetime
from typing import Any

import msgspec
from sqlalchemy import ColumnElement, String, bindparam, case, func, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from facturation_service import entitlements, subscription_slots
from facturation_service.bounds import check_int64
from facturation_service.checkout import allowed_return_url
from facturation_service.entitlements import FINAL, EntitlementSource, EntitlementStatus
from facturation_service.invoices import InvoiceSnapshot
from facturation_service.models import Entitlement, StripeCustomer, Subscription, utcnow
from facturation_service.snapshots import (
    bound_columns,
    upsert_unless_newer_stored,
    user_of_customer,
)
from facturation_service.stripe_api import StripeApi
from shared import ConflictError, Database, NotFoundError

__all__ = [
    "ENDED_STATUSES",
    "SUBSCRIPTION_EVENT_TYPES",
    "SubscriptionSnapshot",
    "SubscriptionView",
    "Subscriptions",
    "apply_subscription_snapshot",
    "extend_from_paid_invoice",
    "list_user_subscriptions",
    "status_rank",
]

SUBSCRIPTION_EVENT_TYPES = frozenset(
    {
        "customer.subscription.created",
        "customer.subscription.updated",
        "customer.subscription.deleted",
        "customer.subscription.paused",
        "customer.subscription.resumed",
    }
)

ENDED_STATUSES = frozenset({"canceled", "incomplete_expired"})
_STATUS_RANKS = {
    "incomplete": 0,
    "trialing": 1,
    "active": 2,
    "paused": 3,
    "past_due": 3,
    "unpaid": 4,
    "canceled": 5,
    "incomplete_expired": 5,
}
_ENTITLEMENT_STATUS = {
    "active": EntitlementStatus.ACTIVE,
    "trialing": EntitlementStatus.ACTIVE,
    "past_due": EntitlementStatus.SUSPENDED,
    "unpaid": EntitlementStatus.SUSPENDED,
    "paused": EntitlementStatus.SUSPENDED,
    "canceled": EntitlementStatus.EXPIRED,
}
"""``incomplete`` grants nothing yet; ``incomplete_expired`` was never paid, so grants nothing."""


def status_rank(status: str) -> int:
    return _STATUS_RANKS.get(status, 0)


class _Item(msgspec.Struct):
    current_period_end: int | None = None
    current_period_start: int | None = None


class _Items(msgspec.Struct):
    data: list[_Item] = []


class SubscriptionSnapshot(msgspec.Struct):
    """What the service uses of a Stripe subscription; the rest is kept raw."""

    id: str
    status: str
    created: int = 0
    customer: str | dict[str, Any] | None = None
    cancel_at_period_end: bool = False
    canceled_at: int | None = None
    ended_at: int | None = None
    metadata: dict[str, Any] = {}
    items: _Items = msgspec.field(default_factory=_Items)

    @property
    def customer_id(self) -> str | None:
        if isinstance(self.customer, dict):
            return str(self.customer.get("id")) if self.customer.get("id") else None
        return self.customer

    @property
    def current_period_end(self) -> int | None:
        """API 2026-10-28: the period lives on the items, not the subscription."""
        return self.items.data[0].current_period_end if self.items.data else None

    def meta(self, name: str) -> str | None:
        value = self.metadata.get(name)
        return str(value)[:64] if value else None


class SubscriptionView(msgspec.Struct):
    id: str
    product_id: str | None
    status: str
    current_period_end: int | None
    """Unix seconds, as Stripe writes it."""
    cancel_at_period_end: bool
    canceled_at: int | None

    @classmethod
    def of(cls, row: Subscription) -> SubscriptionView:
        return cls(
            id=row.id,
            product_id=row.product_id,
            status=row.status,
            current_period_end=row.current_period_end,
            cancel_at_period_end=row.cancel_at_period_end,
            canceled_at=row.canceled_at,
        )

    @classmethod
    def of_snapshot(cls, snapshot: SubscriptionSnapshot) -> SubscriptionView:
        return cls(
            id=snapshot.id,
            product_id=snapshot.meta("product_id"),
            status=snapshot.status,
            current_period_end=snapshot.current_period_end,
            cancel_at_period_end=snapshot.cancel_at_period_end,
            canceled_at=snapshot.canceled_at,
        )


_SUBSCRIPTIONS = Subscription.__table__
_SNAPSHOT_COLUMNS = (
    "id",
    "customer",
    "product_id",
    "order_id",
    "status",
    "current_period_end",
    "cancel_at_period_end",
    "canceled_at",
    "ended_at",
    "created",
    "raw",
    "snapshot_ended",
    "snapshot_created",
    "snapshot_period_end",
    "status_rank",
    "updated_at",
)


def _build_upsert(dialect: Any) -> Any:
    # Owner: metadata.user_id (set by our checkout), else the customer's user.
    owner = func.coalesce(bindparam("p_user_id", type_=String()), user_of_customer())
    return upsert_unless_newer_stored(
        dialect,
        _SUBSCRIPTIONS,
        {**bound_columns(_SUBSCRIPTIONS, _SNAPSHOT_COLUMNS), "user_id": owner},
        key=("snapshot_ended", "snapshot_created", "snapshot_period_end", "status_rank"),
        ties_replace=True,
        keep_stored=("user_id",),
        keep_given=("product_id", "order_id"),
    )


_UPSERTS = {"postgresql": _build_upsert(postgresql), "sqlite": _build_upsert(sqlite)}


async def apply_subscription_snapshot(
    session: AsyncSession, raw: dict[str, Any], *, snapshot_created: int
) -> bool:
    """Store this snapshot unless a newer one is stored, then settle the slot and the
    entitlement from the stored row. ``True`` when the subscription has a known owner.

    Raises:
        msgspec.ValidationError: the object is not a subscription.
        UnprocessableError: a time does not fit its 64-bit column.
    """
    snapshot = msgspec.convert(raw, SubscriptionSnapshot)
    period_end = snapshot.current_period_end
    check_int64(
        {
            "created": snapshot.created,
            "snapshot_created": snapshot_created,
            "current_period_end": period_end,
            "canceled_at": snapshot.canceled_at,
            "ended_at": snapshot.ended_at,
        }
    )
    values: dict[str, Any] = {
        "id": snapshot.id,
        "user_id": snapshot.meta("user_id"),
        "customer": snapshot.customer_id,
        "product_id": snapshot.meta("product_id"),
        "order_id": snapshot.meta("order_id"),
        "status": snapshot.status[:32],
        "current_period_end": period_end,
        "cancel_at_period_end": snapshot.cancel_at_period_end,
        "canceled_at": snapshot.canceled_at,
        "ended_at": snapshot.ended_at,
        "created": snapshot.created,
        "raw": raw,
        "snapshot_ended": snapshot.status in ENDED_STATUSES,
        "snapshot_created": snapshot_created,
        "snapshot_period_end": period_end or 0,
        "status_rank": status_rank(snapshot.status),
        "updated_at": utcnow(),
    }
    statement = _UPSERTS[session.get_bind().dialect.name]
    await session.execute(statement, {f"p_{name}": value for name, value in values.items()})
    stored = await session.get(Subscription, snapshot.id, populate_existing=True)
    assert stored is not None
    if stored.user_id is None:
        return False  # kept; its owner is unknown (no metadata, customer not mapped)
    await _settle(session, stored)
    return True


async def _settle(session: AsyncSession, stored: Subscription) -> None:
    """Bring the slot and the entitlement to what the stored row says."""
    assert stored.user_id is not None
    if stored.status in ENDED_STATUSES:
        await subscription_slots.release_subscription(
            session, stored.user_id, stored.id, stored.order_id
        )
    else:
        await subscription_slots.hold_subscription(
            session, stored.user_id, stored.id, stored.order_id
        )
    target = _ENTITLEMENT_STATUS.get(stored.status)
    if target is None or stored.product_id is None:
        return
    period_end = _datetime(stored.current_period_end)
    await entitlements.grant(
        session,
        user_id=stored.user_id,
        source=EntitlementSource.SUBSCRIPTION,
        source_id=stored.id,
        product_ids=[stored.product_id],
        ends_at=period_end,
    )
    if target is EntitlementStatus.EXPIRED:
        ended = _datetime(stored.ended_at or stored.canceled_at) or utcnow()
        await session.execute(
            update(Entitlement)
            .where(_of_subscription(stored.id), Entitlement.status.not_in(FINAL))
            .values(status=target.value, ends_at=ended, updated_at=utcnow())
            .execution_options(synchronize_session=False)
        )
        return
    values: dict[str, Any] = {"status": target.value, "updated_at": utcnow()}
    differs = Entitlement.status != target.value
    if period_end is not None:
        later = or_(Entitlement.ends_at.is_(None), Entitlement.ends_at < period_end)
        values["ends_at"] = case((later, period_end), else_=Entitlement.ends_at)
        differs = or_(differs, later)
    await session.execute(
        update(Entitlement)
        .where(_of_subscription(stored.id), Entitlement.status.not_in(FINAL), differs)
        .values(**values)
        .execution_options(synchronize_session=False)
    )


def _of_subscription(subscription_id: str) -> ColumnElement[bool]:
    return (Entitlement.source == EntitlementSource.SUBSCRIPTION) & (
        Entitlement.source_id == subscription_id
    )


def _datetime(unix: int | None) -> datetime | None:
    return None if unix is None else datetime.fromtimestamp(unix, UTC)


# --- paid invoices extend the entitlement ---


def paid_invoice_period(invoice: InvoiceSnapshot) -> tuple[str, int] | None:
    """``(subscription id, period end)`` of a paid subscription invoice, else ``None``."""
    if invoice.status != "paid":
        return None
    parent = invoice.parent
    details = parent.get("subscription_details") if isinstance(parent, dict) else None
    subscription = details.get("subscription") if isinstance(details, dict) else None
    if isinstance(subscription, dict):
        subscription = subscription.get("id")
    if not isinstance(subscription, str):
        return None
    ends = [
        line.period.end
        for line in invoice.lines.data
        if line.period is not None and line.period.end is not None
    ]
    if not ends:
        return None
    return subscription, max(ends)


async def extend_from_paid_invoice(session: AsyncSession, invoice: InvoiceSnapshot) -> bool:
    """A paid subscription invoice keeps the plan until its period's end (forward only)."""
    found = paid_invoice_period(invoice)
    if found is None:
        return False
    subscription_id, period_end = found
    check_int64({"invoice period end": period_end})
    ends_at = _datetime(period_end)
    await session.execute(
        update(Entitlement)
        .where(
            _of_subscription(subscription_id),
            Entitlement.status.not_in(FINAL),
            or_(Entitlement.ends_at.is_(None), Entitlement.ends_at < ends_at),
        )
        .values(ends_at=ends_at, updated_at=utcnow())
        .execution_options(synchronize_session=False)
    )
    return True


# --- reading ---


async def list_user_subscriptions(session: AsyncSession, user_id: str) -> list[SubscriptionView]:
    """The user's subscriptions, newest first."""
    rows = await session.scalars(
        select(Subscription)
        .where(Subscription.user_id == user_id)
        .order_by(Subscription.created.desc(), Subscription.id.desc())
    )
    return [SubscriptionView.of(row) for row in rows]


# --- the signed-in user's actions: cancel, resume, the customer portal ---


class Subscriptions:
    """What the subscription routes do; built once by the app."""

    def __init__(
        self,
        database: Database,
        stripe: StripeApi,
        *,
        return_origins: list[str],
        default_return_path: str = "/",
    ) -> None:
        self.database = database
        self.stripe = stripe
        self.return_origins = return_origins
        self.default_return_path = default_return_path

    async def list_for(self, user_id: str) -> list[SubscriptionView]:
        async with self.database.sessionmaker() as session:
            return await list_user_subscriptions(session, user_id)

    async def cancel(
        self, user_id: str, subscription_id: str, *, at_period_end: bool
    ) -> SubscriptionView:
        """At the period's end (Stripe keeps it until then) or now (``DELETE``)."""
        await self._live_subscription_of(user_id, subscription_id)
        if at_period_end:
            answer = await self.stripe.set_cancel_at_period_end(subscription_id, True)
        else:
            answer = await self.stripe.cancel_subscription(subscription_id)
        return await self._apply_answer(answer.to_dict(recursive=True, for_json=True))

    async def resume(self, user_id: str, subscription_id: str) -> SubscriptionView:
        """Undo a scheduled cancel."""
        await self._live_subscription_of(user_id, subscription_id)
        answer = await self.stripe.set_cancel_at_period_end(subscription_id, False)
        return await self._apply_answer(answer.to_dict(recursive=True, for_json=True))

    async def portal_session(self, user_id: str, return_url: str | None) -> str:
        """A Customer Portal session for the user's customer; its URL."""
        checked = allowed_return_url(return_url, self.return_origins, self.default_return_path)
        async with self.database.sessionmaker() as session:
            customer = await session.scalar(
                select(StripeCustomer.user_stripe_id).where(StripeCustomer.user_id == user_id)
            )
        if customer is None:
            raise ConflictError("This user has no Stripe customer yet: nothing to manage.")
        # One portal session per user, return URL and minute: a retried click is the same one.
        digest = hashlib.sha256(checked.encode()).hexdigest()[:16]
        portal = await self.stripe.create_portal_session(
            customer=customer,
            return_url=checked,
            idempotency_key=f"portal-session:{user_id}:{digest}:{int(time.time()) // 60}",
        )
        return str(portal.url)

    async def _live_subscription_of(self, user_id: str, subscription_id: str) -> Subscription:
        async with self.database.sessionmaker() as session:
            row = await session.scalar(
                select(Subscription).where(
                    Subscription.id == subscription_id, Subscription.user_id == user_id
                )
            )
        if row is None:
            raise NotFoundError(f"No subscription {subscription_id} for this user.")
        if row.status in ENDED_STATUSES:
            raise ConflictError(f"Subscription {subscription_id} has ended.")
        return row

    async def _apply_answer(self, raw: dict[str, Any]) -> SubscriptionView:
        """Stripe's answer is the state as of now: stored like an event of this second, so an
        event snapshot that is newer still wins (the key of the module docstring)."""
        async with self.database.sessionmaker() as session, session.begin():
            await apply_subscription_snapshot(session, raw, snapshot_created=int(time.time()))
        return SubscriptionView.of_snapshot(msgspec.convert(raw, SubscriptionSnapshot))
