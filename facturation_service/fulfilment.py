"""Fulfilment: a paid order's products become the user's entitlements, exactly once.

One step, :func:`fulfil`, run from whichever comes first: the worker applying
``checkout.session.completed`` (paid, or no payment required) or
``checkout.session.async_payment_succeeded``, the return page's status request finding the session
complete and paid, or the free checkout. It may run many times and concurrently: the conditional
UPDATE that stamps ``orders.fulfilled_at`` is the record that decides, and only the one call whose
UPDATE moved the row grants. The unique key on entitlements backs that up. A subscription's order
(``mode = subscription``) is stamped but grants nothing: its subscription grants the plan
(``subscriptions.py``).
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import ColumnElement, func, update
from sqlalchemy.ext.asyncio import AsyncSession

from facturation_service import entitlements, orders, refunds
from facturation_service.entitlements import EntitlementSource
from facturation_service.models import Order, OrderStatus, utcnow

__all__ = ["PAID_PAYMENT_STATUSES", "SUBSCRIPTION_MODE", "fulfil", "mark_paid_and_fulfil"]

PAID_PAYMENT_STATUSES = frozenset({"paid", "no_payment_required"})
SUBSCRIPTION_MODE = "subscription"


def _product_ids(lines: list[dict[str, Any]]) -> list[str]:
    return [str(line["product_id"]) for line in lines if line.get("product_id")]


async def fulfil(session: AsyncSession, *where: ColumnElement[bool]) -> list[str]:
    """Fulfil the matched orders that are paid (or complete) and not fulfilled yet.

    Returns:
        The ids of the orders this call fulfilled; empty when another call already did.
    """
    stamped = await session.execute(
        update(Order)
        .where(*where, Order.status.in_(orders.FULFILLABLE), Order.fulfilled_at.is_(None))
        .values(fulfilled_at=utcnow(), updated_at=utcnow())
        .returning(Order.id, Order.user_id, Order.lines, Order.mode)
        .execution_options(synchronize_session=False)
    )
    fulfilled: list[str] = []
    for order_id, user_id, lines, mode in stamped.all():
        fulfilled.append(order_id)
        if mode == SUBSCRIPTION_MODE:
            # Its plan is granted by the subscription (subscriptions.py), not by the order.
            continue
        await entitlements.grant(
            session,
            user_id=user_id,
            source=EntitlementSource.ORDER,
            source_id=order_id,
            product_ids=_product_ids(lines),
        )
        # A dispute or refund that was applied before fulfilment still counts.
        await entitlements.sync_order(session, order_id)
    return fulfilled


async def mark_paid_and_fulfil(
    session: AsyncSession, *where: ColumnElement[bool], payment_intent: str | None
) -> bool:
    """A session found complete and paid: move its order to ``paid`` (if still pending), remember
    the payment intent refunds will name, and fulfil it. ``True`` when this call moved it."""
    values: dict[str, Any] = {}
    if payment_intent:
        values["stripe_payment_intent_id"] = func.coalesce(
            Order.stripe_payment_intent_id, payment_intent
        )
    moved = await orders.transition(session, OrderStatus.PAID, *where, values=values)
    if moved is None and values:
        await session.execute(
            update(Order)
            .where(*where, Order.stripe_payment_intent_id.is_(None))
            .values(**values)
            .execution_options(synchronize_session=False)
        )
    if payment_intent:
        # Refunds or disputes of this payment that came before the order knew it.
        await refunds.link_orphans(session, payment_intent)
    await fulfil(session, *where)
    return moved is not None
