"""Orders moved by Stripe's ``checkout.session.*`` events.

An order leaves ``pending_payment`` once, for ``paid``, ``failed`` or ``expired``, and never moves
again: a transition is one conditional UPDATE on the current status, so duplicates and late events
change nothing. The session's invoice id is linked whenever an event carries it.
"""

from __future__ import annotations

from typing import Any

import msgspec
from sqlalchemy import func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from facturation_service.models import Order, utcnow

__all__ = ["ORDER_EVENT_TYPES", "OrderNotStoredYetError", "apply_checkout_session_event"]

PENDING_PAYMENT = "pending_payment"
_PAID_PAYMENT_STATUSES = frozenset({"paid", "no_payment_required"})

ORDER_EVENT_TYPES = frozenset(
    {
        "checkout.session.completed",
        "checkout.session.async_payment_succeeded",
        "checkout.session.async_payment_failed",
        "checkout.session.expired",
    }
)


class OrderNotStoredYetError(Exception):
    """The session names one of our orders that is not committed yet: retry later."""


class CheckoutSessionSnapshot(msgspec.Struct):
    id: str
    payment_status: str | None = None
    invoice: str | dict[str, Any] | None = None
    metadata: dict[str, str] = {}

    @property
    def invoice_id(self) -> str | None:
        if isinstance(self.invoice, dict):
            return str(self.invoice.get("id")) if self.invoice.get("id") else None
        return self.invoice


def target_status(event_type: str, payment_status: str | None) -> str | None:
    """The order status an event moves to; ``None`` when it does not settle the order (a
    completed session whose asynchronous payment is still running)."""
    if event_type == "checkout.session.completed":
        return "paid" if payment_status in _PAID_PAYMENT_STATUSES else None
    return {
        "checkout.session.async_payment_succeeded": "paid",
        "checkout.session.async_payment_failed": "failed",
        "checkout.session.expired": "expired",
    }.get(event_type)


async def apply_checkout_session_event(
    session: AsyncSession, event_type: str, raw: dict[str, Any]
) -> bool:
    """Move the session's order; ``False`` when the session is not one of ours (ignored).

    Raises:
        OrderNotStoredYetError: the metadata names an order that is not in the database yet.
    """
    checkout = msgspec.convert(raw, CheckoutSessionSnapshot)
    order_id = checkout.metadata.get("order_id")
    matches = Order.stripe_checkout_session_id == checkout.id
    if order_id:
        matches = or_(matches, Order.id == order_id)
    invoice_id = checkout.invoice_id
    values: dict[str, Any] = {"updated_at": utcnow()}
    if invoice_id:
        values["stripe_invoice_id"] = func.coalesce(Order.stripe_invoice_id, invoice_id)
    status = target_status(event_type, checkout.payment_status)
    if status is not None:
        # Only this UPDATE's WHERE decides the transition, so concurrent events cannot both move it.
        moved = await session.execute(
            update(Order)
            .where(matches, Order.status == PENDING_PAYMENT)
            .values(status=status, **values)
            .returning(Order.id)
            .execution_options(synchronize_session=False)
        )
        if moved.first() is not None:
            return True
    if invoice_id:
        await session.execute(
            update(Order)
            .where(matches, Order.stripe_invoice_id.is_(None))
            .values(**values)
            .execution_options(synchronize_session=False)
        )
    exists = (await session.execute(select(Order.id).where(matches))).first() is not None
    if not exists and order_id:
        raise OrderNotStoredYetError(f"order {order_id} of {checkout.id} is not stored yet")
    return exists
