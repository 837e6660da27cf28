"""Refund events land in one table, newest snapshot wins, and the order's amount_refunded is the
sum of the refunds that succeeded: duplicated, reordered or concurrent deliveries end the same."""

from __future__ import annotations

import itertools
from datetime import datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import insert

from facturation_service.models import Refund, utcnow
from facturation_service.refunds import refund_left
from facturation_service.worker import LINK_WINDOW, WebhookWorker, WorkerConfig
from shared import Database
from tests.support import stripe_events
from tests.support.webhook_app import get_event
from tests.unit.facturation_service.orders_support import (
    FAST,
    PRODUCTS,
    apply,
    apply_concurrently,
    entitlements_of,
    get_order,
    paid_session_event,
    store_order,
)


async def paid_order(db: Database, payment_intent: str) -> str:
    order_id = await store_order(db, session_id=f"cs_test_{payment_intent}")
    await apply(db, paid_session_event(order_id, f"cs_test_{payment_intent}", payment_intent))
    return order_id


def full_refund_deliveries(payment_intent: str) -> dict[str, dict[str, Any]]:
    """The three events of one full refund, as Stripe sends them (the refund pending, then
    succeeded, and the charge listing it)."""
    refund_id = f"re_{payment_intent}"
    pending = stripe_events.refund(
        payment_intent=payment_intent, amount=2000, status="pending", refund_id=refund_id
    )
    succeeded = {**pending, "status": "succeeded"}
    charge = stripe_events.charge(
        payment_intent=payment_intent, amount_refunded=2000, refunds=[succeeded]
    )
    return {
        "created": stripe_events.event("refund.created", pending, created=1_800_000_000),
        "updated": stripe_events.event("refund.updated", succeeded, created=1_800_000_005),
        "charge.refunded": stripe_events.event("charge.refunded", charge, created=1_800_000_005),
    }


def redelivered(event: dict[str, Any]) -> dict[str, Any]:
    return {**event, "id": event["id"] + "_again"}


ORDERS = list(itertools.permutations(["created", "updated", "charge.refunded"]))


@pytest.mark.parametrize("order", ORDERS, ids=["-".join(o) for o in ORDERS])
async def test_refund_events_in_any_order_twice_each_end_refunded_and_revoked(
    db: Database, order: tuple[str, ...]
) -> None:
    order_id = await paid_order(db, "pi_Seq0001")
    deliveries = full_refund_deliveries("pi_Seq0001")
    sequence = [deliveries[name] for name in order]

    await apply(db, *sequence, *(redelivered(event) for event in sequence))

    stored = await get_order(db, order_id)
    assert (stored.status, stored.amount_refunded) == ("refunded", 2000)
    assert await entitlements_of(db, order_id) == dict.fromkeys(PRODUCTS, "revoked")


@pytest.mark.parametrize("order", ORDERS, ids=["-".join(o) for o in ORDERS])
async def test_refund_events_applied_concurrently_with_duplicates_end_the_same(
    db: Database, order: tuple[str, ...]
) -> None:
    order_id = await paid_order(db, "pi_Conc0001")
    deliveries = full_refund_deliveries("pi_Conc0001")
    sequence = [deliveries[name] for name in order]

    await apply_concurrently(db, *sequence, *(redelivered(event) for event in sequence))

    stored = await get_order(db, order_id)
    assert (stored.status, stored.amount_refunded) == ("refunded", 2000)
    assert await entitlements_of(db, order_id) == dict.fromkeys(PRODUCTS, "revoked")
    for event in sequence:
        journaled = await get_event(db, event["id"])
        assert journaled is not None
        assert journaled.status == "processed"


async def test_a_partial_refund_keeps_access_and_the_rest_revokes_it(db: Database) -> None:
    order_id = await paid_order(db, "pi_Part0001")

    await apply(
        db,
        stripe_events.event(
            "refund.created", stripe_events.refund(payment_intent="pi_Part0001", amount=500)
        ),
    )
    partial = await get_order(db, order_id)
    assert (partial.status, partial.amount_refunded) == ("partially_refunded", 500)
    assert await entitlements_of(db, order_id) == dict.fromkeys(PRODUCTS, "active")

    await apply(
        db,
        stripe_events.event(
            "refund.created", stripe_events.refund(payment_intent="pi_Part0001", amount=1500)
        ),
    )
    full = await get_order(db, order_id)
    assert (full.status, full.amount_refunded) == ("refunded", 2000)
    assert await entitlements_of(db, order_id) == dict.fromkeys(PRODUCTS, "revoked")


async def test_two_different_refunds_applied_at_once_are_both_counted(db: Database) -> None:
    order_id = await paid_order(db, "pi_Two0001")
    halves = [
        stripe_events.event(
            "refund.created", stripe_events.refund(payment_intent="pi_Two0001", amount=1000)
        )
        for _ in range(2)
    ]

    await apply_concurrently(db, *halves)

    stored = await get_order(db, order_id)
    assert (stored.status, stored.amount_refunded) == ("refunded", 2000)


async def test_a_failed_refund_gives_its_amount_back(db: Database) -> None:
    order_id = await paid_order(db, "pi_Fail0001")
    pending = stripe_events.refund(
        payment_intent="pi_Fail0001", amount=800, status="pending", refund_id="re_Fail0001"
    )

    await apply(db, stripe_events.event("refund.created", pending, created=1_800_000_000))
    async with db.sessionmaker() as session:
        assert await refund_left(session, await get_order(db, order_id)) == 1200

    failed = {**pending, "status": "failed", "failure_reason": "declined"}
    await apply(db, stripe_events.event("refund.failed", failed, created=1_800_000_010))

    stored = await get_order(db, order_id)
    assert (stored.status, stored.amount_refunded) == ("paid", 0)
    async with db.sessionmaker() as session:
        assert await refund_left(session, stored) == 2000
    assert await entitlements_of(db, order_id) == dict.fromkeys(PRODUCTS, "active")


async def test_a_stale_pending_snapshot_never_replaces_a_succeeded_one(db: Database) -> None:
    order_id = await paid_order(db, "pi_Stale0001")
    pending = stripe_events.refund(
        payment_intent="pi_Stale0001", amount=300, status="pending", refund_id="re_Stale0001"
    )

    await apply(
        db,
        stripe_events.event("refund.updated", {**pending, "status": "succeeded"}, created=10),
        stripe_events.event("refund.created", pending, created=20),
    )

    assert (await get_order(db, order_id)).amount_refunded == 300


async def test_a_refund_that_comes_before_its_orders_payment_is_applied_once_it_is_known(
    db: Database,
) -> None:
    order_id = await store_order(db, session_id="cs_test_early_refund")
    early = stripe_events.event(
        "refund.created", stripe_events.refund(payment_intent="pi_Early0001", amount=2000)
    )

    await apply(db, early)
    assert (await get_order(db, order_id)).amount_refunded == 0
    await apply(db, paid_session_event(order_id, "cs_test_early_refund", "pi_Early0001"))

    stored = await get_order(db, order_id)
    assert (stored.status, stored.amount_refunded) == ("refunded", 2000)
    assert await entitlements_of(db, order_id) == dict.fromkeys(PRODUCTS, "revoked")


async def store_orphan_refund(
    db: Database, name: str, amount: int, stored_at: datetime | None = None
) -> None:
    """A refund of ``pi_<name>`` with no order, as if stored by a transaction that did not yet
    see the order's payment intent (``stored_at`` now unless given)."""
    async with db.sessionmaker() as session, session.begin():
        await session.execute(
            insert(Refund).values(
                id=f"re_{name}",
                order_id=None,
                payment_intent=f"pi_{name}",
                charge=f"ch_{name}",
                amount=amount,
                currency="eur",
                status="succeeded",
                reason=None,
                created=1,
                snapshot_created=1,
                status_rank=2,
                raw={},
                updated_at=stored_at or utcnow(),
            )
        )


async def test_the_worker_links_a_refund_committed_while_its_order_was_being_paid(
    db: Database,
) -> None:
    order_id = await store_order(
        db, status="paid", session_id="cs_test_orphan", payment_intent="pi_Orphan0001"
    )
    await store_orphan_refund(db, "Orphan0001", 500)

    await WebhookWorker(db, FAST).housekeeping()

    stored = await get_order(db, order_id)
    assert (stored.status, stored.amount_refunded) == ("partially_refunded", 500)


async def test_after_its_first_sweep_the_worker_looks_only_at_orphans_stored_within_the_window(
    db: Database,
) -> None:
    """The first sweep looks at every refund with no order; the next ones only at those stored
    within ``LINK_WINDOW``, so the refunds of payments that are no order of ours are not looked
    at again every poll."""
    worker = WebhookWorker(db, WorkerConfig(poll_interval=0.0))  # each call sweeps
    long_ago = utcnow() - LINK_WINDOW - timedelta(minutes=5)
    early = await store_order(db, status="paid", session_id="cs_test_e", payment_intent="pi_Early1")
    await store_orphan_refund(db, "Early1", 100, long_ago)
    await worker.housekeeping()  # the first sweep: every orphan

    late = await store_order(db, status="paid", session_id="cs_test_l", payment_intent="pi_Late1")
    fresh = await store_order(db, status="paid", session_id="cs_test_f", payment_intent="pi_New1")
    await store_orphan_refund(db, "Late1", 200, long_ago)
    await store_orphan_refund(db, "New1", 300)
    await worker.housekeeping()  # a later sweep: orphans stored within the window

    refunded = [
        (await get_order(db, order_id)).amount_refunded for order_id in (early, late, fresh)
    ]
    assert refunded == [100, 0, 300]


async def test_a_refund_event_without_a_payment_intent_is_ignored(db: Database) -> None:
    refund = stripe_events.refund(payment_intent="pi_x", amount=100)
    refund["payment_intent"] = None
    event = stripe_events.event("refund.created", refund)

    await apply(db, event)

    journaled = await get_event(db, event["id"])
    assert journaled is not None
    assert journaled.status == "ignored"
