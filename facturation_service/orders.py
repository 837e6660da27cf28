"""The order state machine, and the one conditional UPDATE every status change goes through.

::

    pending_payment ──► paid ──► partially_refunded ──► refunded
         │                └──────────────────────────────▲
         ├──► failed
         ├──► expired
         └──► canceled
    complete  (a basket of free products: born complete, never moves)

Statuses only move forward, each edge once. :func:`transition` puts the allowed sources of its
target in the UPDATE's WHERE, so the database decides: duplicated, late or concurrent callers find
the row already moved and change nothing.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import ColumnElement, update
from sqlalchemy.ext.asyncio import AsyncSession

from facturation_service.models import Order, OrderStatus, utcnow

__all__ = [
    "FULFILLABLE",
    "REFUNDABLE",
    "TRANSITIONS",
    "can_move",
    "refund_status",
    "sources_of",
    "transition",
]

TRANSITIONS: dict[OrderStatus, frozenset[OrderStatus]] = {
    OrderStatus.PENDING_PAYMENT: frozenset(
        {OrderStatus.PAID, OrderStatus.FAILED, OrderStatus.EXPIRED, OrderStatus.CANCELED}
    ),
    OrderStatus.PAID: frozenset({OrderStatus.PARTIALLY_REFUNDED, OrderStatus.REFUNDED}),
    OrderStatus.PARTIALLY_REFUNDED: frozenset({OrderStatus.REFUNDED}),
    OrderStatus.REFUNDED: frozenset(),
    OrderStatus.FAILED: frozenset(),
    OrderStatus.EXPIRED: frozenset(),
    OrderStatus.CANCELED: frozenset(),
    OrderStatus.COMPLETE: frozenset(),
}
"""Every allowed edge; anything else is refused."""

FULFILLABLE = frozenset(
    {
        OrderStatus.PAID,
        OrderStatus.PARTIALLY_REFUNDED,
        OrderStatus.REFUNDED,
        OrderStatus.COMPLETE,
    }
)
"""Statuses in which the order was paid for (or had nothing to pay): its fulfil step may run."""

REFUNDABLE = frozenset({OrderStatus.PAID, OrderStatus.PARTIALLY_REFUNDED})
"""Statuses a refund can be asked for from (a free order has nothing to give back)."""


def can_move(current: str, target: str) -> bool:
    try:
        return OrderStatus(target) in TRANSITIONS[OrderStatus(current)]
    except ValueError:
        return False


def sources_of(target: OrderStatus) -> frozenset[OrderStatus]:
    """The statuses an order may be in to move to ``target``."""
    return frozenset(source for source, targets in TRANSITIONS.items() if target in targets)


def refund_status(amount_total: int, amount_refunded: int) -> OrderStatus | None:
    """The refund status ``amount_refunded`` puts a paid order in; ``None`` while nothing is."""
    if amount_refunded <= 0:
        return None
    if amount_refunded >= amount_total:
        return OrderStatus.REFUNDED
    return OrderStatus.PARTIALLY_REFUNDED


async def transition(
    session: AsyncSession,
    target: OrderStatus,
    *where: ColumnElement[bool],
    values: dict[str, Any] | None = None,
) -> str | None:
    """Move the order matched by ``where`` to ``target`` if its current status allows it.

    Returns:
        The order's id when this call moved it; ``None`` when no order could move (unknown, or
        already moved: by an earlier call or by a concurrent one this UPDATE waited for).
    """
    moved = await session.execute(
        update(Order)
        .where(*where, Order.status.in_(sources_of(target)))
        .values({"status": target, "updated_at": utcnow(), **(values or {})})
        .returning(Order.id)
        .execution_options(synchronize_session=False)
    )
    row = moved.first()
    return None if row is None else str(row[0])
