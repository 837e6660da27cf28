"""Refunds of paid orders: asked for here (the operations route) or in Stripe's Dashboard, both
known through the same table.

A refund is stored by Stripe's id (``re_...``), newest snapshot wins: the stored row is replaced
only by a snapshot of higher status rank (pending < requires_action < succeeded < failed =
canceled), or of the same rank and a later time. Events come twice and out of order
(``refund.created``, ``refund.updated``, ``refund.failed``, ``charge.refunded``), so the order's
``amount_refunded`` is never a running total: after each change it is recomputed from the table
as the sum of the succeeded refunds, under the order's row lock (taken first, so concurrent
changes to one order's refunds happen one after the other). A refund that fails or is canceled
gives its amount back. The order then moves forward through the state machine, and a full refund
revokes its entitlements (``entitlements.sync_order``).
"""

from __future__ import annotations

import hashlib
import time
from datetime import datetime
from typing import Any, Literal

import msgspec
from sqlalchemy import Table, delete, func, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from facturation_service import entitlements, orders
from facturation_service.models import Dispute, Order, Refund, RefundRequest, utcnow
from facturation_service.snapshots import upsert_unless_newer_stored
from facturation_service.stripe_api import StripeApi
from shared import ConflictError, Database, NotFoundError, UnprocessableError

__all__ = [
    "REFUND_EVENT_TYPES",
    "RESERVING_STATUSES",
    "RefundCreate",
    "RefundResult",
    "RefundSnapshot",
    "Refunds",
    "apply_charge_refunded",
    "apply_refund_snapshot",
    "link_orphans",
    "lock_order",
    "recompute_order",
    "refund_left",
    "request_refund",
    "upsert_newest",
]

REFUND_EVENT_TYPES = frozenset(
    {"refund.created", "refund.updated", "refund.failed", "charge.refunded"}
)

_STATUS_RANKS = {"pending": 0, "requires_action": 1, "succeeded": 2, "failed": 3, "canceled": 3}
RESERVING_STATUSES = frozenset({"pending", "requires_action", "succeeded"})
"""Refund statuses whose amount is no longer available to refund."""


def _id_of(value: str | dict[str, Any] | None) -> str | None:
    if isinstance(value, dict):
        found = value.get("id")
        return str(found) if found else None
    return value


class RefundSnapshot(msgspec.Struct):
    id: str
    amount: int
    currency: str
    status: str
    created: int
    payment_intent: str | dict[str, Any] | None = None
    charge: str | dict[str, Any] | None = None
    reason: str | None = None
    metadata: dict[str, str] = {}


def upsert_newest(session: AsyncSession, table: Table, values: dict[str, Any]) -> Any:
    """Store a refund or dispute snapshot unless the stored one ranks higher, or the same and is
    as new (``snapshots.upsert_unless_newer_stored``); an ``order_id`` once linked stays. Returns
    the statement's result (a row when it inserted or replaced)."""
    dialect = postgresql if session.get_bind().dialect.name == "postgresql" else sqlite
    statement = upsert_unless_newer_stored(
        dialect,
        table,
        values,
        key=("status_rank", "snapshot_created"),
        ties_replace=False,
        keep_stored=("order_id",),
    )
    return session.execute(statement)


async def lock_order(
    session: AsyncSession, *, payment_intent: str | None, order_id: str | None = None
) -> str | None:
    """Take the row lock of the order a payment intent (or our metadata) names; its id, or
    ``None`` when the payment is not one of our orders. The first statement writes, so SQLite
    takes its write lock at once too."""
    matches = []
    if payment_intent:
        matches.append(Order.stripe_payment_intent_id == payment_intent)
    if order_id:
        matches.append(Order.id == order_id)
    if not matches:
        return None
    locked = await session.execute(
        update(Order)
        .where(or_(*matches))
        .values(updated_at=utcnow())
        .returning(Order.id)
        .execution_options(synchronize_session=False)
    )
    row = locked.first()
    return None if row is None else str(row[0])


async def recompute_order(session: AsyncSession, order_id: str) -> None:
    """``amount_refunded`` from the table, the order's refund status forward, its entitlements."""
    succeeded = (
        select(func.coalesce(func.sum(Refund.amount), 0))
        .where(Refund.order_id == order_id, Refund.status == "succeeded")
        .scalar_subquery()
    )
    totals = await session.execute(
        update(Order)
        .where(Order.id == order_id)
        .values(amount_refunded=succeeded)
        .returning(Order.amount_total, Order.amount_refunded)
        .execution_options(synchronize_session=False)
    )
    amount_total, amount_refunded = totals.one()
    target = orders.refund_status(amount_total, amount_refunded)
    if target is not None:
        await orders.transition(session, target, Order.id == order_id)
    await entitlements.sync_order(session, order_id)


async def refund_left(session: AsyncSession, order: Order) -> int:
    """What can still be refunded: the total less every refund not failed or canceled."""
    reserved = await session.scalar(
        select(func.coalesce(func.sum(Refund.amount), 0)).where(
            Refund.order_id == order.id, Refund.status.in_(RESERVING_STATUSES)
        )
    )
    return max(order.amount_total - int(reserved or 0), 0)


async def _store(
    session: AsyncSession,
    order_id: str | None,
    refund: RefundSnapshot,
    raw: dict[str, Any],
    at: int,
) -> None:
    await upsert_newest(
        session,
        Refund.__table__,  # type: ignore[arg-type]
        {
            "id": refund.id,
            "order_id": order_id,
            "payment_intent": _id_of(refund.payment_intent),
            "charge": _id_of(refund.charge),
            "amount": refund.amount,
            "currency": refund.currency,
            "status": refund.status,
            "reason": refund.reason,
            "created": refund.created,
            "snapshot_created": at,
            "status_rank": _STATUS_RANKS.get(refund.status, 0),
            "raw": raw,
            "updated_at": utcnow(),
        },
    )


async def apply_refund_snapshot(
    session: AsyncSession, raw: dict[str, Any], *, snapshot_created: int | None = None
) -> bool:
    """Store one refund snapshot and bring its order up to date.

    A refund whose payment no order names yet is stored unlinked; :func:`link_orphans` links it
    once the order's payment intent is known. ``False`` (ignored) only without a payment intent.
    """
    refund = msgspec.convert(raw, RefundSnapshot)
    payment_intent = _id_of(refund.payment_intent)
    order_id = await lock_order(
        session, payment_intent=payment_intent, order_id=refund.metadata.get("order_id")
    )
    if order_id is None and payment_intent is None:
        return False
    at = int(time.time()) if snapshot_created is None else snapshot_created
    await _store(session, order_id, refund, raw, at)
    if order_id is not None:
        await recompute_order(session, order_id)
    return True


class _ChargeSnapshot(msgspec.Struct):
    id: str
    payment_intent: str | dict[str, Any] | None = None
    refunds: dict[str, Any] | None = None


async def apply_charge_refunded(
    session: AsyncSession, raw: dict[str, Any], *, snapshot_created: int
) -> bool:
    """``charge.refunded``: each refund the charge lists is one more snapshot of it."""
    charge = msgspec.convert(raw, _ChargeSnapshot)
    payment_intent = _id_of(charge.payment_intent)
    order_id = await lock_order(session, payment_intent=payment_intent)
    if order_id is None and payment_intent is None:
        return False
    listed = (charge.refunds or {}).get("data") or []
    for item in listed:
        refund = msgspec.convert(item, RefundSnapshot)
        await _store(session, order_id, refund, item, snapshot_created)
    if order_id is not None:
        await recompute_order(session, order_id)
    return True


async def link_orphans(
    session: AsyncSession,
    payment_intent: str | None = None,
    *,
    stored_since: datetime | None = None,
) -> list[str]:
    """Give refunds and disputes that arrived before their order's payment intent was known
    their order, and bring those orders up to date; the orders' ids.

    Run when an order learns its payment intent (``fulfilment``) and by the worker's
    housekeeping, which catches a refund committed while that order was being paid; with
    ``stored_since``, only refunds and disputes stored since then are looked at (those of
    payments that are no order of ours stay orphans forever).
    """
    found: set[tuple[str, str]] = set()
    for table in (Refund, Dispute):
        orphans = (
            select(Order.id, Order.stripe_payment_intent_id)
            .join(table, table.payment_intent == Order.stripe_payment_intent_id)
            .where(table.order_id.is_(None))
        )
        if payment_intent is not None:
            orphans = orphans.where(table.payment_intent == payment_intent)
        if stored_since is not None:
            orphans = orphans.where(table.updated_at >= stored_since)
        found.update((str(row[0]), str(row[1])) for row in (await session.execute(orphans)).all())
    linked: set[str] = set()
    # The order's row lock first, then the refunds' rows: the order every other path takes.
    for order_id, intent in sorted(found):
        await lock_order(session, payment_intent=None, order_id=order_id)
        for table in (Refund, Dispute):
            await session.execute(
                update(table)
                .where(table.order_id.is_(None), table.payment_intent == intent)
                .values(order_id=order_id)
                .execution_options(synchronize_session=False)
            )
        await recompute_order(session, order_id)
        linked.add(order_id)
    return sorted(linked)


# --- the operations route's refund request ---


class RefundCreate(msgspec.Struct, forbid_unknown_fields=True):
    amount: int | None = None
    """Minor units; defaults to what is left to refund."""
    reason: Literal["duplicate", "fraudulent", "requested_by_customer"] | None = None


class RefundResult(msgspec.Struct):
    id: str
    order_id: str
    amount: int
    status: str


def request_hash(body: RefundCreate) -> str:
    return hashlib.sha256(msgspec.json.encode(body)).hexdigest()


def stripe_idempotency_key(order_id: str, idempotency_key: str) -> str:
    """Derived from the caller's key: the same request reaches Stripe as the same request."""
    digest = hashlib.sha256(idempotency_key.encode()).hexdigest()[:32]
    return f"order-refund:{order_id}:{digest}"


async def _stored_result(session: AsyncSession, order_id: str, refund_id: str) -> RefundResult:
    refund = await session.get(Refund, refund_id)
    if refund is None:  # pragma: no cover - written in the transaction that set refund_id
        raise ConflictError("The refund of this Idempotency-Key is not stored.")
    return RefundResult(id=refund.id, order_id=order_id, amount=refund.amount, status=refund.status)


async def request_refund(
    database: Database,
    stripe_api: StripeApi,
    *,
    order_id: str,
    idempotency_key: str,
    body: RefundCreate,
) -> tuple[RefundResult, bool]:
    """Refund (part of) a paid order through Stripe; ``(result, created)``.

    The key is recorded before Stripe is called (``refund_requests``' primary key decides who
    owns it), and removed again if Stripe refuses, so a failure leaves nothing half-made.

    Raises:
        NotFoundError: no such order.
        ConflictError: the key was used with another body; the order was never paid, or is free.
        UnprocessableError: the amount is not positive, or more than is left to refund.
    """
    if body.amount is not None and body.amount <= 0:
        raise UnprocessableError("amount must be a positive integer (minor units).")
    digest = request_hash(body)
    async with database.sessionmaker() as session:
        order = await session.get(Order, order_id)
        if order is None:
            raise NotFoundError(f"No order {order_id}.")
        earlier = await session.get(RefundRequest, (order_id, idempotency_key))
        if earlier is not None:
            if earlier.request_hash != digest:
                raise ConflictError("This Idempotency-Key was used with another request body.")
            if earlier.refund_id is not None:
                return await _stored_result(session, order_id, earlier.refund_id), False
        if order.status not in orders.REFUNDABLE or order.amount_total <= 0:
            raise ConflictError(
                f"Order {order_id} is {order.status}: there is no payment to refund."
            )
        left = await refund_left(session, order)
        amount = left if body.amount is None else body.amount
        if amount <= 0 or amount > left:
            raise UnprocessableError(
                f"amount {amount} is more than what is left to refund ({left}).",
                extra={"refundable": left},
            )
        payment_intent = order.stripe_payment_intent_id
    if payment_intent is None and order.stripe_checkout_session_id:
        checkout = await stripe_api.retrieve_checkout_session(order.stripe_checkout_session_id)
        payment_intent = _id_of(checkout.to_dict().get("payment_intent"))
    if payment_intent is None:
        raise ConflictError(f"Order {order_id} has no payment intent to refund.")
    if earlier is None:
        await _claim_key(database, order_id, idempotency_key, digest)
    try:
        created = await stripe_api.create_refund(
            payment_intent=payment_intent,
            amount=amount,
            reason=body.reason,
            metadata={"order_id": order_id},
            idempotency_key=stripe_idempotency_key(order_id, idempotency_key),
        )
    except Exception:
        async with database.sessionmaker() as session, session.begin():
            await session.execute(
                delete(RefundRequest).where(
                    RefundRequest.order_id == order_id,
                    RefundRequest.idempotency_key == idempotency_key,
                    RefundRequest.refund_id.is_(None),
                )
            )
        raise
    raw = created.to_dict(recursive=True, for_json=True)
    async with database.sessionmaker() as session, session.begin():
        await apply_refund_snapshot(session, raw)
        await session.execute(
            update(RefundRequest)
            .where(
                RefundRequest.order_id == order_id,
                RefundRequest.idempotency_key == idempotency_key,
            )
            .values(refund_id=created.id)
        )
        return await _stored_result(session, order_id, created.id), True


class Refunds:
    """The operations route's collaborator: refunds through Stripe, stored here. One per app."""

    def __init__(self, database: Database, stripe_api: StripeApi) -> None:
        self.database = database
        self.stripe_api = stripe_api

    async def request(
        self, *, order_id: str, idempotency_key: str, body: RefundCreate
    ) -> tuple[RefundResult, bool]:
        return await request_refund(
            self.database,
            self.stripe_api,
            order_id=order_id,
            idempotency_key=idempotency_key,
            body=body,
        )


async def _claim_key(database: Database, order_id: str, key: str, digest: str) -> None:
    """Record the key; a concurrent first use with another body is a 409."""
    async with database.sessionmaker() as session, session.begin():
        dialect = postgresql if session.get_bind().dialect.name == "postgresql" else sqlite
        inserted = await session.execute(
            dialect.insert(RefundRequest)
            .values(
                order_id=order_id,
                idempotency_key=key,
                request_hash=digest,
                refund_id=None,
                created_at=utcnow(),
            )
            .on_conflict_do_nothing(index_elements=["order_id", "idempotency_key"])
            .returning(RefundRequest.order_id)
        )
        if inserted.first() is None:
            stored = await session.scalar(
                select(RefundRequest.request_hash).where(
                    RefundRequest.order_id == order_id, RefundRequest.idempotency_key == key
                )
            )
            if stored != digest:
                raise ConflictError("This Idempotency-Key was used with another request body.")
