"""Disputes: opened, the order's entitlements are suspended; won, restored; lost, revoked. The
stored dispute decides, so a late ``created`` after ``closed`` changes nothing."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from facturation_service.models import Dispute
from shared import Database
from tests.support import stripe_events
from tests.unit.facturation_service.orders_support import (
    PRODUCTS,
    apply,
    entitlements_of,
    paid_session_event,
    store_order,
)


async def paid_order(db: Database, payment_intent: str) -> str:
    order_id = await store_order(db, session_id=f"cs_test_{payment_intent}")
    await apply(db, paid_session_event(order_id, f"cs_test_{payment_intent}", payment_intent))
    return order_id


def dispute_events(payment_intent: str, outcome: str) -> tuple[dict[str, Any], dict[str, Any]]:
    opened = stripe_events.dispute(payment_intent=payment_intent, dispute_id=f"du_{payment_intent}")
    closed = {**opened, "status": outcome}
    return (
        stripe_events.event("charge.dispute.created", opened, created=1_800_000_000),
        stripe_events.event("charge.dispute.closed", closed, created=1_800_000_900),
    )


async def test_an_open_dispute_suspends_the_orders_entitlements(db: Database) -> None:
    order_id = await paid_order(db, "pi_Open0001")
    created, _ = dispute_events("pi_Open0001", "won")

    await apply(db, created)

    assert await entitlements_of(db, order_id) == dict.fromkeys(PRODUCTS, "suspended")


async def test_a_won_dispute_restores_them(db: Database) -> None:
    order_id = await paid_order(db, "pi_Won0001")

    await apply(db, *dispute_events("pi_Won0001", "won"))

    assert await entitlements_of(db, order_id) == dict.fromkeys(PRODUCTS, "active")
    async with db.sessionmaker() as session:
        stored = (await session.scalars(select(Dispute))).one()
    assert (stored.id, stored.order_id, stored.status) == ("du_pi_Won0001", order_id, "won")


async def test_a_lost_dispute_revokes_them(db: Database) -> None:
    order_id = await paid_order(db, "pi_Lost0001")

    await apply(db, *dispute_events("pi_Lost0001", "lost"))

    assert await entitlements_of(db, order_id) == dict.fromkeys(PRODUCTS, "revoked")


async def test_a_late_created_after_a_won_close_changes_nothing(db: Database) -> None:
    order_id = await paid_order(db, "pi_LateWon0001")
    created, closed = dispute_events("pi_LateWon0001", "won")

    await apply(db, closed, created)

    assert await entitlements_of(db, order_id) == dict.fromkeys(PRODUCTS, "active")


async def test_a_lost_close_before_its_created_still_revokes(db: Database) -> None:
    order_id = await paid_order(db, "pi_LateLost0001")
    created, closed = dispute_events("pi_LateLost0001", "lost")

    await apply(db, closed, created)

    assert await entitlements_of(db, order_id) == dict.fromkeys(PRODUCTS, "revoked")


async def test_a_dispute_before_fulfilment_leaves_the_new_grant_suspended(db: Database) -> None:
    order_id = await store_order(db, session_id="cs_test_early_dispute", payment_intent="pi_E01")
    created, _ = dispute_events("pi_E01", "won")

    await apply(db, created, paid_session_event(order_id, "cs_test_early_dispute", "pi_E01"))

    assert await entitlements_of(db, order_id) == dict.fromkeys(PRODUCTS, "suspended")
