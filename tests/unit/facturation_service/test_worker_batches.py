"""A batch of invoice events is applied with one multi-row upsert per run of distinct invoices:
the stored state is the one applying them one by one gives, whatever the order; and two workers,
each on its own connections (as two processes are), apply one backlog exactly once."""

from __future__ import annotations

import asyncio
import json
import logging
import random
import time
from datetime import timedelta
from typing import Any

import msgspec
import pytest
from sqlalchemy import String, func, select

from facturation_service import journal
from facturation_service.invoices import _chunks
from facturation_service.models import Invoice, InvoiceLine, WebhookEvent
from facturation_service.worker import WebhookWorker, WorkerConfig
from shared import Database
from tests.support import stripe_events
from tests.support.webhook_app import journal_event

STATUSES = {"invoice.created": "draft", "invoice.finalized": "open", "invoice.paid": "paid"}


def lifecycle(invoice_id: str, *, created: int) -> list[dict[str, Any]]:
    """created → finalized → paid of one invoice, one second apart, each with its own lines."""
    return [
        stripe_events.event(
            type_,
            stripe_events.invoice(status, invoice_id=invoice_id, created=created - 100),
            created=created + offset,
        )
        for offset, (type_, status) in enumerate(STATUSES.items())
    ]


async def stored_state(db: Database) -> dict[str, tuple[str | None, list[str]]]:
    """Each invoice's status and its lines' ids, in position order."""
    async with db.sessionmaker() as session:
        invoices = (await session.scalars(select(Invoice))).all()
        lines = (
            await session.execute(
                select(InvoiceLine.invoice_id, InvoiceLine.id).order_by(
                    InvoiceLine.invoice_id, InvoiceLine.position
                )
            )
        ).all()
    return {
        invoice.id: (invoice.status, [line.id for line in lines if line.invoice_id == invoice.id])
        for invoice in invoices
    }


def lines_of(event: dict[str, Any]) -> list[str]:
    return [line["id"] for line in event["data"]["object"]["lines"]["data"]]


@pytest.mark.parametrize("seed", [1, 2, 3])
async def test_a_batch_of_many_invoices_in_any_order_ends_in_each_newest_snapshot(
    db: Database, seed: int, caplog: pytest.LogCaptureFixture
) -> None:
    created = int(time.time()) - 1000
    stored_first = lifecycle("in_batch_stored_paid", created=created)
    for event in stored_first:
        await journal_event(db, event)
    await WebhookWorker(db).drain()
    lifecycles = [lifecycle(f"in_batch_{index:04d}", created=created) for index in range(6)]
    # The stored paid invoice's older snapshots come again: duplicates and late arrivals.
    batch = [event for events in lifecycles for event in events] + stored_first[:2]
    random.Random(seed).shuffle(batch)
    for event in batch:
        await journal_event(db, event)
    async with db.sessionmaker() as session:
        claimed = await journal.claim_events(session, limit=64, lease=timedelta(seconds=30))
    assert len(claimed) == len(batch) - 2  # the two repeats were journaled already

    caplog.set_level(logging.INFO, logger="facturation_service.worker")
    await WebhookWorker(db).process_batch(claimed)

    assert "rolled back" not in caplog.text  # applied as one batch, not one by one
    expected = {events[-1]["data"]["object"]["id"]: events[-1] for events in lifecycles}
    expected["in_batch_stored_paid"] = stored_first[-1]
    assert await stored_state(db) == {
        invoice_id: ("paid", lines_of(event)) for invoice_id, event in expected.items()
    }


async def test_an_older_snapshot_in_a_batch_keeps_the_newer_stored_one_and_its_lines(
    db: Database,
) -> None:
    created = int(time.time()) - 1000
    first, _, paid = lifecycle("in_batch_newer_kept", created=created)
    await journal_event(db, paid)
    await WebhookWorker(db).drain()
    others = [lifecycle(f"in_batch_other_{index}", created=created)[1] for index in range(3)]
    for event in [others[0], first, *others[1:]]:
        await journal_event(db, event)

    await WebhookWorker(db).drain()

    state = await stored_state(db)
    assert state["in_batch_newer_kept"] == ("paid", lines_of(paid))
    assert all(state[event["data"]["object"]["id"]][0] == "open" for event in others)


async def test_two_workers_on_their_own_connections_apply_one_backlog_exactly_once(
    facturation_url: str, db: Database
) -> None:
    created = int(time.time()) - 1000
    lifecycles = [lifecycle(f"in_two_workers_{index:04d}", created=created) for index in range(60)]
    backlog = [event for events in lifecycles for event in events]
    random.Random(7).shuffle(backlog)
    for event in backlog:
        await journal_event(db, event)
    # Two engines: two pools, as two worker processes would have.
    databases = [Database(facturation_url), Database(facturation_url)]
    config = WorkerConfig(batch_size=16, concurrency=2, poll_interval=0.05)
    workers = [WebhookWorker(database, config) for database in databases]
    try:
        async with workers[0].running(), workers[1].running():
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline:
                async with db.sessionmaker() as session:
                    done = await session.scalar(
                        select(func.count()).where(WebhookEvent.status == "processed")
                    )
                if done == len(backlog):
                    break
                await asyncio.sleep(0.05)
    finally:
        for database in databases:
            await database.dispose()

    async with db.sessionmaker() as session:
        events = (await session.execute(select(WebhookEvent.status, WebhookEvent.attempts))).all()
    # Claimed once each: a second claim would have counted a second attempt.
    assert sorted(set(events)) == [("processed", 1)]
    assert len(events) == len(backlog)
    assert await stored_state(db) == {
        events[-1]["data"]["object"]["id"]: ("paid", lines_of(events[-1])) for events in lifecycles
    }


@pytest.mark.parametrize("count", [1, 2, 3, 37, 63, 64, 65, 200])
def test_a_run_is_upserted_in_statements_of_a_few_fixed_sizes(count: int) -> None:
    chunks = _chunks(count)
    assert [start for start, _ in chunks] == [
        sum(s for _, s in chunks[:i]) for i in range(len(chunks))
    ]
    assert sum(size for _, size in chunks) == count
    assert {size for _, size in chunks} <= {1, 2, 4, 8, 16, 32, 64}


async def test_an_invoice_is_stored_as_stripe_wrote_it_less_the_whitespace(db: Database) -> None:
    """The worker reads the invoice straight from the event's JSON and stores that JSON, not a
    copy it decoded and encoded again: the invoice's ``raw`` and each line's are Stripe's text
    (which indents it) without the whitespace, and read back as the event's object."""
    invoice = stripe_events.invoice(
        "paid", invoice_id="in_as_sent", lines=[("Pro plan — année", 1500, 1), ("Stickers", 250, 2)]
    )
    event = stripe_events.event("invoice.paid", invoice)
    await journal_event(db, event)
    await WebhookWorker(db).drain()

    sent = stripe_events.encode(event).decode()
    assert "\n  " in sent
    async with db.sessionmaker() as session:
        stored_raw = await session.scalar(
            select(func.cast(Invoice.raw, String)).where(Invoice.id == "in_as_sent")
        )
        stored_lines = (
            await session.scalars(
                select(func.cast(InvoiceLine.raw, String))
                .where(InvoiceLine.invoice_id == "in_as_sent")
                .order_by(InvoiceLine.position)
            )
        ).all()
    assert stored_raw == msgspec.json.format(stripe_events.encode(invoice).decode(), indent=-1)
    assert json.loads(stored_raw) == invoice
    assert [json.loads(line) for line in stored_lines] == invoice["lines"]["data"]
    assert all(line == msgspec.json.format(line, indent=-1) for line in stored_lines)
