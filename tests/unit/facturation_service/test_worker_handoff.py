"""The intake hands the events it stores to the app's worker already claimed: the worker applies
them without claiming them from the journal, still exactly once, and never at the cost of the
backlog stored ``pending``."""

from __future__ import annotations

import asyncio
import functools
from datetime import timedelta
from typing import Any

import msgspec
import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from facturation_service import journal
from facturation_service.journal import ClaimedEvent, EventEnvelope, EventStatus, JournalWriter
from facturation_service.models import Invoice, WebhookEvent, utcnow
from facturation_service.worker import StripeEvent, WebhookWorker, WorkerConfig, event_handlers
from shared import Database
from tests.support import stripe_events
from tests.support.webhook_app import get_event, journal_event, wait_until

QUIET = WorkerConfig(poll_interval=30.0, lease=30.0)
"""No poll within a test: a claim comes only from what the loop was told."""


class Taker:
    """A handoff that keeps what it is given."""

    def __init__(self, room: int, *, accept: bool = True) -> None:
        self.lease = timedelta(seconds=30)
        self.capacity = room
        self.accept = accept
        self.taken: list[ClaimedEvent] = []

    def room(self) -> int:
        return self.capacity - len(self.taken)

    def take(self, events: list[ClaimedEvent]) -> bool:
        if self.accept:
            self.taken.extend(events)
        return self.accept


def paid_event() -> dict[str, Any]:
    return stripe_events.event("invoice.paid", stripe_events.invoice("paid"))


def record(writer: JournalWriter, event: dict[str, Any]) -> asyncio.Future[bool]:
    body = stripe_events.encode(event)
    return writer.record(msgspec.json.decode(body, type=EventEnvelope), body.decode(), handled=True)


async def rows(db: Database) -> dict[str, WebhookEvent]:
    async with db.sessionmaker() as session:
        return {row.id: row for row in (await session.scalars(select(WebhookEvent))).all()}


async def test_the_writer_stores_claimed_the_events_its_handoff_has_room_for(db: Database) -> None:
    writer = JournalWriter(db.engine)
    taker = Taker(room=2)
    writer.handoff = taker
    events = [paid_event() for _ in range(5)]
    before = utcnow()

    assert await asyncio.gather(*(record(writer, event) for event in events)) == [True] * 5
    await writer.drain()

    stored = await rows(db)
    handed = {event.id: event for event in taker.taken}
    assert len(handed) == 2
    (token,) = {event.claim_token for event in taker.taken}
    for event in events:
        row = stored[event["id"]]
        if row.id in handed:
            assert (row.status, row.attempts, row.claim_token) == ("processing", 1, token)
            assert row.locked_until is not None
            assert before + timedelta(seconds=29) < row.locked_until <= utcnow() + taker.lease
            assert row.processed_at is None
            assert handed[row.id].attempts == 1
            assert handed[row.id].payload == stripe_events.encode(event).decode()
            assert (handed[row.id].type, handed[row.id].created) == (row.type, row.created)
        else:
            assert (row.status, row.attempts, row.claim_token) == ("pending", 0, None)
            assert row.locked_until is None
    assert writer.pending_stored == 3


async def test_a_delivery_journaled_already_is_never_handed_over_again(db: Database) -> None:
    writer = JournalWriter(db.engine)
    taker = Taker(room=10)
    writer.handoff = taker
    first, second = paid_event(), paid_event()

    assert await record(writer, first)
    # Stripe sends ``first`` again, and ``second`` twice at once: the same batch.
    again = await asyncio.gather(record(writer, first), *(record(writer, second) for _ in range(2)))
    await writer.drain()

    assert again == [False, True, False]
    assert [event.id for event in taker.taken] == [first["id"], second["id"]]
    stored = await rows(db)
    assert stored[first["id"]].claim_token == taker.taken[0].claim_token
    assert stored[first["id"]].attempts == 1
    assert writer.pending_stored == 0


async def test_events_a_stopped_worker_refuses_go_back_to_pending(db: Database) -> None:
    writer = JournalWriter(db.engine)
    writer.handoff = Taker(room=10, accept=False)
    events = [paid_event() for _ in range(3)]

    await asyncio.gather(*(record(writer, event) for event in events))
    await writer.drain()

    stored = await rows(db)
    for event in events:
        row = stored[event["id"]]
        assert (row.status, row.attempts, row.claim_token, row.locked_until) == (
            "pending",
            0,
            None,
            None,
        )


def handoff_of(writer: JournalWriter) -> journal.Handoff | None:
    return writer.handoff


def count_claims(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """How many events each claim from the journal took."""
    claims: list[int] = []
    real = journal.claim_events

    async def claim_events(session: Any, **kwargs: Any) -> list[ClaimedEvent]:
        claimed = await real(session, **kwargs)
        claims.append(len(claimed))
        return claimed

    monkeypatch.setattr(journal, "claim_events", claim_events)
    return claims


async def applied_once(db: Database, events: list[dict[str, Any]]) -> None:
    for event in events:
        row = await wait_until(functools.partial(get_event, db, event["id"]), status="processed")
        assert row.attempts == 1
    async with db.sessionmaker() as session:
        invoices = await session.scalar(select(func.count()).select_from(Invoice))
    assert invoices == len(events)


async def test_handed_events_are_applied_with_no_claim(
    db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    claims = count_claims(monkeypatch)
    writer = JournalWriter(db.engine)
    worker = WebhookWorker(db, QUIET, intake=writer)
    loop = asyncio.create_task(worker.run())
    while not claims:  # noqa: ASYNC110 - a test's spy, no event to wait on
        await asyncio.sleep(0.01)
    events = []
    for _ in range(4):
        batch = [paid_event() for _ in range(3)]
        events += batch
        await asyncio.gather(*(record(writer, event) for event in batch))
        worker.wake()
        await asyncio.sleep(0.05)

    await applied_once(db, events)
    await worker.stop()
    await asyncio.wait_for(loop, 5)
    await writer.drain()

    assert claims == [0]  # the loop's first look at the journal; none since


class Running:
    """The app's worker loop and journal writer, once the loop's first look at the journal is
    over (``claims``: from :func:`count_claims`)."""

    def __init__(self, db: Database, config: WorkerConfig, claims: list[int]) -> None:
        self.writer = JournalWriter(db.engine)
        self.worker = WebhookWorker(db, config, intake=self.writer)
        self.claims = claims

    async def __aenter__(self) -> Running:
        self.loop = asyncio.create_task(self.worker.run())
        while not self.claims:  # noqa: ASYNC110 - a test's spy, no event to wait on
            await asyncio.sleep(0.01)
        assert self.writer.handoff is self.worker
        return self

    async def __aexit__(self, *_: object) -> None:
        await self.worker.stop()
        await asyncio.wait_for(self.loop, 5)
        await self.writer.drain()


async def test_events_stored_pending_for_want_of_room_are_claimed_at_once(
    db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    claims = count_claims(monkeypatch)
    async with Running(db, msgspec.structs.replace(QUIET, handoff=1), claims) as app:
        events = [paid_event() for _ in range(6)]

        await asyncio.gather(*(record(app.writer, event) for event in events))
        app.worker.wake()

        assert app.writer.pending_stored == 5
        await asyncio.wait_for(applied_once(db, events), 5)  # not at the next poll, 30 s away


async def test_an_event_queued_outside_the_intake_is_claimed_when_the_worker_is_told(
    db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    claims = count_claims(monkeypatch)
    async with Running(db, QUIET, claims) as app:
        replayed = paid_event()
        await journal_event(db, replayed)  # as a replay or a catch-up pass stores it

        app.worker.notify()

        await asyncio.wait_for(applied_once(db, [replayed]), 5)


async def test_the_backlog_is_claimed_while_handed_events_wait(db: Database) -> None:
    """40 events handed over, 12 stored before them waiting in the journal: batches of each take
    turns, so the backlog is not held back until the intake stops handing events over."""
    real = event_handlers()["invoice.paid"]
    applied: list[str] = []

    async def recording(session: AsyncSession, event: StripeEvent) -> bool:
        applied.append(event.id)
        return await real(session, event)

    backlog = [paid_event() for _ in range(12)]
    for event in backlog:
        await journal_event(db, event)
    config = msgspec.structs.replace(QUIET, batch_size=2, concurrency=1, handoff=64)
    writer = JournalWriter(db.engine)
    worker = WebhookWorker(db, config, handlers={"invoice.paid": recording}, intake=writer)
    writer.handoff = worker  # as its loop does when it starts
    handed = [paid_event() for _ in range(40)]
    await asyncio.gather(*(record(writer, event) for event in handed))
    assert len(worker._handed) == 40

    loop = asyncio.create_task(worker.run())
    await asyncio.wait_for(applied_once(db, backlog + handed), 10)
    await worker.stop()
    await asyncio.wait_for(loop, 5)
    await writer.drain()

    waiting = {event["id"] for event in backlog}
    assert waiting <= set(applied[:24]), [event_id in waiting for event_id in applied]
    assert set(applied[:24]) - waiting  # and handed ones among them


async def test_a_handed_event_whose_lease_ran_out_is_applied_once(db: Database) -> None:
    """A worker held up longer than a lease: the event is claimed again and applied by another
    worker; the first one, getting to it at last, finds its claim gone and leaves it."""
    writer = JournalWriter(db.engine)
    held_up = WebhookWorker(db, WorkerConfig(lease=0.2), intake=writer)
    writer.handoff = held_up  # as its loop does when it starts
    event = paid_event()
    assert await record(writer, event)
    (handed,) = held_up._take_handed(10)
    await asyncio.sleep(0.3)

    other = WebhookWorker(db, WorkerConfig(lease=30.0))
    assert await other.run_once() == 1
    await held_up.process_batch([handed])

    row = await get_event(db, event["id"])
    assert row is not None
    assert (row.status, row.attempts, row.claim_token) == ("processed", 2, None)
    async with db.sessionmaker() as session:
        assert await session.scalar(select(func.count()).select_from(Invoice)) == 1
    await writer.drain()


async def test_stopping_gives_back_the_handed_events_no_batch_took(db: Database) -> None:
    writer = JournalWriter(db.engine)
    stopping = WebhookWorker(db, QUIET, intake=writer)
    writer.handoff = stopping  # as its loop does when it starts
    events = [paid_event() for _ in range(3)]
    await asyncio.gather(*(record(writer, event) for event in events))
    assert {row.status for row in (await rows(db)).values()} == {EventStatus.PROCESSING}

    await stopping.stop()

    assert handoff_of(writer) is None
    for event in events:
        row = await get_event(db, event["id"])
        assert row is not None
        assert (row.status, row.attempts, row.claim_token) == (EventStatus.PENDING, 0, None)
    # Taken at once by the next worker, not once the 30 s lease has run out.
    assert await WebhookWorker(db, QUIET).run_once(limit=10) == 3
    await applied_once(db, events)
    await writer.drain()
