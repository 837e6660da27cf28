"""Orders in a chosen state, their entitlements, and events applied through the journal and the
worker, for the order, fulfilment, refund and dispute tests."""

from __future__ import annotations

import asyncio
import time
import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import select

from facturation_service.models import Entitlement, Order, OrderStatus, WebhookEvent, utcnow
from facturation_service.worker import WebhookWorker, WorkerConfig
from shared import Database
from tests.support import stripe_events
from tests.support.webhook_app import journal_event

FAST = WorkerConfig(poll_interval=0.02, retry_base=0.0, max_attempts=3, concurrency=32)
USER_ID = "11111111-2222-4333-8444-555555555555"
LINES: list[dict[str, Any]] = [
    {
        "product_id": "pro-month",
        "name": "Pro",
        "quantity": 1,
        "unit_amount": 1500,
        "amount": 1500,
        "currency": "eur",
    },
    {
        "product_id": "sticker-pack",
        "name": "Stickers",
        "quantity": 2,
        "unit_amount": 250,
        "amount": 500,
        "currency": "eur",
    },
]
PRODUCTS = ["pro-month", "sticker-pack"]


async def store_order(
    db: Database,
    *,
    status: str = OrderStatus.PENDING_PAYMENT,
    user_id: str = USER_ID,
    payment_intent: str | None = None,
    session_id: str | None = None,
    amount_total: int = 2000,
    lines: list[dict[str, Any]] | None = None,
    created_at: datetime | None = None,
) -> str:
    order_id = f"ord_{uuid.uuid4().hex}"
    async with db.sessionmaker() as session, session.begin():
        session.add(
            Order(
                id=order_id,
                user_id=user_id,
                user_stripe_id="cus_TestCustomer0001",
                stripe_checkout_session_id=session_id
                if session_id is not None
                else f"cs_test_{uuid.uuid4().hex}",
                status=status,
                amount_total=amount_total,
                currency="eur",
                lines=LINES if lines is None else lines,
                stripe_payment_intent_id=payment_intent,
                created_at=created_at or utcnow(),
            )
        )
    return order_id


async def get_order(db: Database, order_id: str) -> Order:
    async with db.sessionmaker() as session:
        order = await session.get(Order, order_id)
    assert order is not None
    return order


async def entitlements_of(db: Database, order_id: str) -> dict[str, str]:
    """``{product_id: status}`` of the order's entitlements."""
    async with db.sessionmaker() as session:
        rows = await session.scalars(
            select(Entitlement).where(
                Entitlement.source == "order", Entitlement.source_id == order_id
            )
        )
        return {row.product_id: row.status for row in rows}


async def count_entitlements(db: Database, order_id: str) -> int:
    async with db.sessionmaker() as session:
        rows = await session.scalars(
            select(Entitlement.id).where(Entitlement.source_id == order_id)
        )
        return len(rows.all())


async def apply(db: Database, *events: dict[str, Any]) -> None:
    """Journal each event and let the worker apply everything due, one after the other.

    The app under test may run a worker of its own that claims an event first: each event is
    waited for until it is settled, whoever applied it."""
    for event in events:
        await journal_event(db, event)
        deadline = time.monotonic() + 10
        while True:
            await WebhookWorker(db, FAST).drain()
            async with db.sessionmaker() as session:
                status = await session.scalar(
                    select(WebhookEvent.status).where(WebhookEvent.id == event["id"])
                )
            if status not in ("pending", "processing") or time.monotonic() > deadline:
                break
            await asyncio.sleep(0.02)


async def apply_concurrently(db: Database, *events: dict[str, Any]) -> None:
    """Journal all the events, then apply them at once, each in its own transaction."""
    for event in events:
        await journal_event(db, event)
    worker = WebhookWorker(db, FAST)
    await worker.run_once(limit=len(events))
    await worker.drain()  # whatever lost a race and was put back for a retry


def paid_session_event(order_id: str, session_id: str, payment_intent: str) -> dict[str, Any]:
    session = stripe_events.checkout_session(
        session_id=session_id, metadata={"user_id": USER_ID, "order_id": order_id}
    )
    session["payment_intent"] = payment_intent
    return stripe_events.event("checkout.session.completed", session)
