"""Disputes of an order's payment: ``charge.dispute.created`` suspends the order's entitlements,
``charge.dispute.closed`` restores them when won and revokes them when lost.

Disputes are stored by Stripe's id (``du_...``), newest snapshot wins by status rank (open <
under review < closed) then time, so a late ``created`` after ``closed`` changes nothing; the
entitlements follow from the stored disputes (``entitlements.sync_order``), not from the event
that happened to arrive last.
"""

from __future__ import annotations

from typing import Any

import msgspec
from sqlalchemy.ext.asyncio import AsyncSession

from facturation_service import entitlements
from facturation_service.models import Dispute, utcnow
from facturation_service.refunds import lock_order, upsert_newest

__all__ = ["DISPUTE_EVENT_TYPES", "DisputeSnapshot", "apply_dispute_snapshot", "status_rank"]

DISPUTE_EVENT_TYPES = frozenset(
    {"charge.dispute.created", "charge.dispute.updated", "charge.dispute.closed"}
)


def status_rank(status: str) -> int:
    if status in entitlements.DISPUTE_CLOSED_STATUSES:
        return 2
    return 1 if status.endswith("under_review") else 0


class DisputeSnapshot(msgspec.Struct):
    id: str
    amount: int
    currency: str
    status: str
    charge: str | dict[str, Any] | None = None
    payment_intent: str | dict[str, Any] | None = None
    reason: str | None = None


def _id_of(value: str | dict[str, Any] | None) -> str | None:
    if isinstance(value, dict):
        found = value.get("id")
        return str(found) if found else None
    return value


async def apply_dispute_snapshot(
    session: AsyncSession, raw: dict[str, Any], *, snapshot_created: int
) -> bool:
    """Store the dispute and set the order's entitlements. A dispute of a payment no order names
    yet is stored unlinked (``refunds.link_orphans``); ``False`` only without a payment intent."""
    dispute = msgspec.convert(raw, DisputeSnapshot)
    payment_intent = _id_of(dispute.payment_intent)
    order_id = await lock_order(session, payment_intent=payment_intent)
    if order_id is None and payment_intent is None:
        return False
    await upsert_newest(
        session,
        Dispute.__table__,  # type: ignore[arg-type]
        {
            "id": dispute.id,
            "order_id": order_id,
            "payment_intent": payment_intent,
            "charge": _id_of(dispute.charge),
            "amount": dispute.amount,
            "currency": dispute.currency,
            "status": dispute.status,
            "reason": dispute.reason,
            "snapshot_created": snapshot_created,
            "status_rank": status_rank(dispute.status),
            "raw": raw,
            "updated_at": utcnow(),
        },
    )
    if order_id is not None:
        await entitlements.sync_order(session, order_id)
    return True
