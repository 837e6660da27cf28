"""Invoice snapshots applied in every order, one after another and concurrently: the stored
invoice always ends in the newest snapshot's state, stored once."""

from __future__ import annotations

import itertools
import time
from datetime import datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import func, select

from facturation_service import journal
from facturation_service.models import InvoiceLine, StripeCustomer, utcnow
from facturation_service.worker import LINK_WINDOW, WebhookWorker, WorkerConfig
from shared import Database
from tests.support import stripe_events
from tests.support.webhook_app import count_invoices, get_event, get_invoice, journal_event

STATUS_OF = {"invoice.created": "draft", "invoice.finalized": "open", "invoice.paid": "paid"}
ORDERS = list(itertools.permutations(STATUS_OF))


def lifecycle(invoice_id: str, *, same_second: bool) -> dict[str, dict[str, Any]]:
    """created → finalized → paid of one invoice, as three events Stripe sent in that order."""
    start = int(time.time()) - 100
    created = int(time.time()) - 200
    return {
        type_: stripe_events.event(
            type_,
            stripe_events.invoice(status, invoice_id=invoice_id, created=created),
            created=start if same_second else start + offset,
        )
        for offset, (type_, status) in enumerate(STATUS_OF.items())
    }


async def assert_paid(db: Database, invoice_id: str) -> None:
    stored = await get_invoice(db, invoice_id)
    assert stored is not None
    assert stored.status == "paid"
    assert stored.amount_paid == stored.total == 2000
    assert stored.amount_remaining == 0
    assert stored.status_transitions["paid_at"] is not None
    assert stored.number is not None
    assert stored.hosted_invoice_url is not None
    assert await count_invoices(db) == 1
    async with db.sessionmaker() as session:
        lines = await session.scalar(
            select(func.count())
            .select_from(InvoiceLine)
            .where(InvoiceLine.invoice_id == invoice_id)
        )
    assert lines == 2


@pytest.mark.parametrize("same_second", [False, True], ids=["one-second-apart", "same-second"])
@pytest.mark.parametrize("order", ORDERS, ids=["-".join(t[8:] for t in o) for o in ORDERS])
async def test_every_delivery_order_of_created_finalized_paid_ends_paid(
    db: Database, order: tuple[str, ...], same_second: bool
) -> None:
    events = lifecycle("in_ordering_test_0001", same_second=same_second)
    worker = WebhookWorker(db, WorkerConfig(concurrency=1))

    for type_ in order:
        await journal_event(db, events[type_])
        await worker.drain()

    await assert_paid(db, "in_ordering_test_0001")
    for event in events.values():
        stored = await get_event(db, event["id"])
        assert stored is not None
        assert stored.status == "processed"


@pytest.mark.parametrize("order", ORDERS, ids=["-".join(t[8:] for t in o) for o in ORDERS])
async def test_every_order_applied_concurrently_ends_paid(
    db: Database, order: tuple[str, ...]
) -> None:
    events = lifecycle("in_concurrent_test_0001", same_second=False)
    for type_ in order:
        await journal_event(db, events[type_])

    await WebhookWorker(db, WorkerConfig(concurrency=3)).drain()

    await assert_paid(db, "in_concurrent_test_0001")


async def test_a_newer_snapshot_of_the_same_status_replaces_the_stored_one(
    db: Database,
) -> None:
    invoice = stripe_events.invoice("paid", invoice_id="in_updated_after_paid")
    paid = stripe_events.event("invoice.paid", invoice, created=int(time.time()) - 10)
    updated_invoice = {**invoice, "hosted_invoice_url": "https://invoice.stripe.com/i/new"}
    updated = stripe_events.event("invoice.updated", updated_invoice, created=int(time.time()))
    worker = WebhookWorker(db)

    await journal_event(db, paid)
    await journal_event(db, updated)
    await worker.drain()

    stored = await get_invoice(db, "in_updated_after_paid")
    assert stored is not None
    assert stored.hosted_invoice_url == "https://invoice.stripe.com/i/new"


async def test_an_invoice_of_an_unknown_customer_is_kept_then_linked_when_the_mapping_appears(
    db: Database,
) -> None:
    invoice = stripe_events.invoice("paid", customer="cus_NotMappedYet01")
    worker = WebhookWorker(db, WorkerConfig(poll_interval=0.0))
    await journal_event(db, stripe_events.event("invoice.paid", invoice))
    await worker.drain()
    stored = await get_invoice(db, invoice["id"])
    assert stored is not None
    assert stored.user_id is None

    await map_customer(db, "cus_NotMappedYet01", "11111111-2222-4333-8444-555555555555")
    await worker.housekeeping()

    stored = await get_invoice(db, invoice["id"])
    assert stored is not None
    assert stored.user_id == "11111111-2222-4333-8444-555555555555"


async def test_after_its_first_sweep_the_worker_links_only_customers_mapped_within_the_window(
    db: Database,
) -> None:
    """The first sweep looks at every invoice nobody owns; the next ones only at the invoices
    of customers mapped within ``LINK_WINDOW``, so the invoices of customers that are nobody's
    here are not looked at again every poll."""
    worker = WebhookWorker(db, WorkerConfig(poll_interval=0.0))
    long_ago = utcnow() - LINK_WINDOW - timedelta(minutes=5)
    early, late, recent = (
        stripe_events.invoice("paid", customer=f"cus_Sweep{name}")
        for name in ("Early", "Late", "New")
    )
    await journal_event(db, stripe_events.event("invoice.paid", early))
    await worker.drain()
    await map_customer(db, "cus_SweepEarly", "11111111-2222-4333-8444-00000000000a", long_ago)
    await worker.housekeeping()  # the first sweep: every invoice nobody owns

    await journal_event(db, stripe_events.event("invoice.paid", late))
    await journal_event(db, stripe_events.event("invoice.paid", recent))
    await worker.drain()
    await map_customer(db, "cus_SweepLate", "11111111-2222-4333-8444-00000000000b", long_ago)
    await map_customer(db, "cus_SweepNew", "11111111-2222-4333-8444-00000000000c", utcnow())
    await worker.housekeeping()  # a later sweep: customers mapped within the window

    owners = [(await get_invoice(db, invoice["id"])) for invoice in (early, late, recent)]
    assert [owner.user_id if owner else "missing" for owner in owners] == [
        "11111111-2222-4333-8444-00000000000a",
        None,
        "11111111-2222-4333-8444-00000000000c",
    ]


async def map_customer(
    db: Database, customer: str, user_id: str, created_at: datetime | None = None
) -> None:
    """The user's Stripe customer, as ``customers.py`` stores it (``created_at`` now unless
    given)."""
    async with db.sessionmaker() as session, session.begin():
        session.add(
            StripeCustomer(
                user_id=user_id,
                user_stripe_id=customer,
                email="ada@example.com",
                created_at=created_at or utcnow(),
            )
        )


async def test_an_invoice_of_a_known_customer_is_linked_when_stored(db: Database) -> None:
    await map_customer(db, "cus_KnownCustomer1", "11111111-2222-4333-8444-000000000001")
    invoice = stripe_events.invoice("open", customer="cus_KnownCustomer1")

    await journal_event(db, stripe_events.event("invoice.finalized", invoice))
    await WebhookWorker(db).drain()

    stored = await get_invoice(db, invoice["id"])
    assert stored is not None
    assert stored.user_id == "11111111-2222-4333-8444-000000000001"


@pytest.mark.parametrize("order", ORDERS, ids=["-".join(t[8:] for t in o) for o in ORDERS])
async def test_every_order_applied_in_one_batch_ends_paid(
    db: Database, order: tuple[str, ...]
) -> None:
    events = lifecycle("in_batch_test_0001", same_second=False)
    for type_ in order:
        await journal_event(db, events[type_])
    async with db.sessionmaker() as session:
        claimed = await journal.claim_events(session, limit=3, lease=timedelta(seconds=30))
    assert [event.type for event in claimed] == list(order)

    await WebhookWorker(db).process_batch(claimed)

    await assert_paid(db, "in_batch_test_0001")


async def test_a_newer_snapshot_replaces_the_stored_lines_and_an_older_one_keeps_them(
    db: Database,
) -> None:
    created = int(time.time()) - 60
    first = stripe_events.invoice("open", lines=[("A", 100, 1), ("B", 200, 1)], created=created)
    newer = stripe_events.invoice(
        "paid", invoice_id=first["id"], lines=[("C", 300, 1)], created=created
    )
    await journal_event(db, stripe_events.event("invoice.finalized", first, created=created))
    await WebhookWorker(db, WorkerConfig(concurrency=1)).drain()
    await journal_event(db, stripe_events.event("invoice.paid", newer, created=created + 1))
    await journal_event(db, stripe_events.event("invoice.finalized", first, created=created))
    await WebhookWorker(db, WorkerConfig(concurrency=1)).drain()

    async with db.sessionmaker() as session:
        lines = (
            await session.scalars(
                select(InvoiceLine.description).where(InvoiceLine.invoice_id == first["id"])
            )
        ).all()
    assert list(lines) == ["C"]
