"""Checkout Session events move the local order forward only, once, and link its invoice."""

from __future__ import annotations

import itertools
import uuid

import pytest

from facturation_service.journal import replay_event
from facturation_service.models import Order, OrderStatus
from facturation_service.worker import WebhookWorker, WorkerConfig
from shared import Database
from tests.support import stripe_events
from tests.support.webhook_app import get_event, journal_event

FAST = WorkerConfig(poll_interval=0.02, retry_base=0.0, max_attempts=3)
USER_ID = "11111111-2222-4333-8444-555555555555"


async def store_order(db: Database, session_id: str, order_id: str | None = None) -> str:
    order_id = order_id or str(uuid.uuid4())
    async with db.sessionmaker() as session, session.begin():
        session.add(
            Order(
                id=order_id,
                user_id=USER_ID,
                user_stripe_id="cus_TestCustomer0001",
                stripe_checkout_session_id=session_id,
                status=OrderStatus.PENDING_PAYMENT,
                amount_total=2000,
                currency="eur",
                lines=[{"product_id": "pro", "quantity": 1}],
            )
        )
    return order_id


async def get_order(db: Database, order_id: str) -> Order:
    async with db.sessionmaker() as session:
        order = await session.get(Order, order_id)
    assert order is not None
    return order


def session_event(
    type_: str, session_id: str, order_id: str, *, payment_status: str = "paid", invoice: str = ""
) -> dict[str, object]:
    return stripe_events.event(
        type_,
        stripe_events.checkout_session(
            session_id=session_id,
            payment_status=payment_status,
            status="expired" if type_.endswith("expired") else "complete",
            invoice_id=invoice or None,
            metadata={"user_id": USER_ID, "order_id": order_id},
        ),
    )


async def apply(db: Database, *events: dict[str, object]) -> None:
    for event in events:
        await journal_event(db, event)
    await WebhookWorker(db, FAST).drain()


async def test_a_completed_paid_session_marks_the_order_paid_and_links_its_invoice(
    db: Database,
) -> None:
    order_id = await store_order(db, "cs_test_paid_0001")

    await apply(
        db,
        session_event(
            "checkout.session.completed", "cs_test_paid_0001", order_id, invoice="in_0001"
        ),
    )

    order = await get_order(db, order_id)
    assert (order.status, order.stripe_invoice_id) == ("paid", "in_0001")


async def test_duplicates_change_nothing_once_paid(db: Database) -> None:
    order_id = await store_order(db, "cs_test_dup_0001")
    event = session_event("checkout.session.completed", "cs_test_dup_0001", order_id)

    await apply(db, event)
    await apply(db, {**event, "id": "evt_redelivered_copy_0001"})

    assert (await get_order(db, order_id)).status == "paid"


@pytest.mark.parametrize(
    "order",
    list(itertools.permutations(["checkout.session.completed", "checkout.session.expired"])),
    ids=["completed-then-expired", "expired-then-completed"],
)
async def test_the_first_settling_event_wins_and_the_order_never_moves_again(
    db: Database, order: tuple[str, str]
) -> None:
    order_id = await store_order(db, "cs_test_race_0001")

    for type_ in order:
        await apply(db, session_event(type_, "cs_test_race_0001", order_id))

    expected = "paid" if order[0].endswith("completed") else "expired"
    assert (await get_order(db, order_id)).status == expected


async def test_an_asynchronous_payment_waits_then_fails_and_a_late_success_is_refused(
    db: Database,
) -> None:
    order_id = await store_order(db, "cs_test_async_0001")

    await apply(
        db,
        session_event(
            "checkout.session.completed",
            "cs_test_async_0001",
            order_id,
            payment_status="unpaid",
            invoice="in_async_0001",
        ),
    )
    order = await get_order(db, order_id)
    assert (order.status, order.stripe_invoice_id) == ("pending_payment", "in_async_0001")

    await apply(
        db,
        session_event("checkout.session.async_payment_failed", "cs_test_async_0001", order_id),
    )
    assert (await get_order(db, order_id)).status == "failed"

    await apply(
        db,
        session_event("checkout.session.async_payment_succeeded", "cs_test_async_0001", order_id),
    )
    assert (await get_order(db, order_id)).status == "failed"


async def test_an_asynchronous_payment_that_succeeds_marks_the_order_paid(
    db: Database,
) -> None:
    order_id = await store_order(db, "cs_test_async_0002")

    await apply(
        db,
        session_event(
            "checkout.session.completed", "cs_test_async_0002", order_id, payment_status="unpaid"
        ),
        session_event("checkout.session.async_payment_succeeded", "cs_test_async_0002", order_id),
    )

    assert (await get_order(db, order_id)).status == "paid"


async def test_an_event_arriving_before_its_order_is_stored_is_retried_until_it_is(
    db: Database,
) -> None:
    order_id = str(uuid.uuid4())
    event = session_event("checkout.session.completed", "cs_test_early_0001", order_id)

    await apply(db, event)
    stored = await get_event(db, event["id"])  # type: ignore[arg-type]
    assert stored is not None
    assert stored.status == "failed"  # FAST allows three attempts, all before the order existed
    assert stored.last_error is not None
    assert "not stored yet" in stored.last_error

    await store_order(db, "cs_test_early_0001", order_id)
    async with db.sessionmaker() as session:
        await replay_event(session, event["id"])  # type: ignore[arg-type]
    await WebhookWorker(db, FAST).drain()

    assert (await get_order(db, order_id)).status == "paid"


async def test_a_session_that_is_not_ours_is_ignored(db: Database) -> None:
    event = stripe_events.event(
        "checkout.session.completed", stripe_events.checkout_session(metadata={})
    )

    await apply(db, event)

    stored = await get_event(db, event["id"])
    assert stored is not None
    assert stored.status == "ignored"
