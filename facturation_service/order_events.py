"""Orders moved by Stripe's ``checkout.session.*`` events.

An order leaves ``pending_payment`` once, for ``paid``, ``failed`` or ``expired``: a transition is
one conditional UPDATE of the state machine (``orders.transition``), so duplicates and late events
change nothing. A paid session runs the fulfil step (``fulfilment.py``). The session's invoice id
is linked whenever an event carries it.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, Protocol

import msgspec
from sqlalchemy import func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from facturation_service import disputes, fulfilment, orders, refunds
from facturation_service.models import Order, OrderStatus, utcnow
from shared import ServiceUnavailableError

__all__ = [
    "ORDER_EVENT_TYPES",
    "PAYMENT_EVENT_TYPES",
    "OrderNotStoredYetError",
    "apply_checkout_session_event",
    "apply_payment_event",
    "payment_event_handlers",
]

_PAID_PAYMENT_STATUSES = fulfilment.PAID_PAYMENT_STATUSES

ORDER_EVENT_TYPES = frozenset(
    {
        "checkout.session.completed",
        "checkout.session.async_payment_succeeded",
        "checkout.session.async_payment_failed",
        "checkout.session.expired",
    }
)


class OrderNotStoredYetError(ServiceUnavailableError):
    """The session names one of our orders that is not committed yet: a server-side "not yet",
    so the worker retries it later."""


class CheckoutSessionSnapshot(msgspec.Struct):
    id: str
    payment_status: str | None = None
    invoice: str | dict[str, Any] | None = None
    metadata: dict[str, str] = {}
    payment_intent: str | dict[str, Any] | None = None

    @property
    def payment_intent_id(self) -> str | None:
        if isinstance(self.payment_intent, dict):
            found = self.payment_intent.get("id")
            return str(found) if found else None
        return self.payment_intent

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
    # issue 10: every status change goes through the state machine's conditional UPDATE, and a
    # paid session runs the one fulfil step (a no-op once the order is fulfilled).
    moved = False
    if status == OrderStatus.PAID:
        moved = await fulfilment.mark_paid_and_fulfil(
            session, matches, payment_intent=checkout.payment_intent_id
        )
    elif status is not None:
        moved = await orders.transition(session, OrderStatus(status), matches) is not None
    if invoice_id:
        await session.execute(
            update(Order)
            .where(matches, Order.stripe_invoice_id.is_(None))
            .values(**values)
            .execution_options(synchronize_session=False)
        )
    if moved:
        return True
    exists = (await session.execute(select(Order.id).where(matches))).first() is not None
    if not exists and order_id:
        raise OrderNotStoredYetError(f"order {order_id} of {checkout.id} is not stored yet")
    return exists


# --- refunds and disputes (issue 10): the same journal, the same worker, one handler ---

PAYMENT_EVENT_TYPES = refunds.REFUND_EVENT_TYPES | disputes.DISPUTE_EVENT_TYPES


class JournaledEvent(Protocol):
    @property
    def type(self) -> str: ...
    @property
    def created(self) -> int: ...
    @property
    def object(self) -> dict[str, Any]: ...


async def apply_payment_event(session: AsyncSession, event: JournaledEvent) -> bool:
    """Apply a refund or dispute event to its order; ``False`` when the payment is not ours."""
    if event.type == "charge.refunded":
        return await refunds.apply_charge_refunded(
            session, event.object, snapshot_created=event.created
        )
    if event.type in refunds.REFUND_EVENT_TYPES:
        return await refunds.apply_refund_snapshot(
            session, event.object, snapshot_created=event.created
        )
    return await disputes.apply_dispute_snapshot(
        session, event.object, snapshot_created=event.created
    )


def payment_event_handlers() -> dict[str, Callable[[AsyncSession, Any], Awaitable[bool]]]:
    return dict.fromkeys(PAYMENT_EVENT_TYPES, apply_payment_event)
