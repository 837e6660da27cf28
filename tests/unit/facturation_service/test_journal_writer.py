"""The receiver's group commit: concurrent deliveries share one INSERT, each told truly whether
its event was new."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import asyncpg
import msgspec
import pytest
from sqlalchemy import event, text
from sqlalchemy.ext.asyncio import AsyncConnection

from facturation_service.journal import EventEnvelope, JournalWriteError, JournalWriter
from shared import Database
from tests.support import stripe_events
from tests.support.databases import terminate_connections, using_postgres
from tests.support.webhook_app import count_events, get_event
from tests.unit.facturation_service.conftest import NewWriter


def delivery(event: dict[str, object]) -> tuple[EventEnvelope, str]:
    body = stripe_events.encode(event)
    return msgspec.json.decode(body, type=EventEnvelope), body.decode()


async def test_concurrent_deliveries_with_repeats_store_each_event_once(
    db: Database, new_writer: NewWriter
) -> None:
    events = [stripe_events.event("invoice.paid", stripe_events.invoice("paid")) for _ in range(30)]
    deliveries = [delivery(event) for event in events] * 3  # every event delivered three times
    writer = new_writer(max_batch=16)

    results = await asyncio.gather(
        *(writer.record(envelope, payload, handled=True) for envelope, payload in deliveries)
    )

    assert sum(results) == 30
    new_ids = [envelope.id for (envelope, _), new in zip(deliveries, results, strict=True) if new]
    assert sorted(new_ids) == sorted(str(event["id"]) for event in events)
    assert await count_events(db) == 30
    stored = await get_event(db, str(events[0]["id"]))
    assert stored is not None
    assert stored.payload == deliveries[0][1]
    assert stored.status == "pending"


async def test_a_delivery_whose_client_left_is_still_stored_and_its_batch_answered(
    db: Database, new_writer: NewWriter
) -> None:
    """The request task of a client that hung up may be cancelled while it waits for its batch:
    its event was accepted into the batch and is stored, and the others in the batch are
    answered as if nothing happened."""
    writer = new_writer()
    deliveries = [
        delivery(stripe_events.event("invoice.paid", stripe_events.invoice("paid")))
        for _ in range(3)
    ]

    async def request(envelope: EventEnvelope, payload: str) -> bool:
        return await writer.record(envelope, payload, handled=True)

    tasks = [asyncio.create_task(request(envelope, payload)) for envelope, payload in deliveries]
    await asyncio.sleep(0)  # each has joined the pending batch; no flusher has taken it yet
    tasks[1].cancel()

    await asyncio.wait(tasks)

    assert tasks[1].cancelled()
    assert [task.result() for task in (tasks[0], tasks[2])] == [True, True]
    assert await count_events(db) == 3
    assert await get_event(db, deliveries[1][0].id) is not None


async def test_a_failed_batch_fails_every_delivery_in_it_and_stores_nothing(
    db: Database, new_writer: NewWriter
) -> None:
    async with db.engine.begin() as connection:
        await connection.execute(text("DROP TABLE webhook_events"))
    writer = new_writer()
    deliveries = [
        delivery(stripe_events.event("invoice.paid", stripe_events.invoice("paid")))
        for _ in range(5)
    ]

    results = await asyncio.gather(
        *(writer.record(envelope, payload, handled=True) for envelope, payload in deliveries),
        return_exceptions=True,
    )

    assert all(isinstance(result, Exception) for result in results)


async def test_a_failed_batch_fails_with_the_journal_s_error_caused_by_the_database_s(
    db: Database, new_writer: NewWriter
) -> None:
    """What the intake answers 503 to, whichever way the batch went to the database."""
    async with db.engine.begin() as connection:
        await connection.execute(text("DROP TABLE webhook_events"))
    envelope, payload = delivery(stripe_events.event("invoice.paid", stripe_events.invoice("paid")))

    with pytest.raises(JournalWriteError) as failed:
        await new_writer().record(envelope, payload, handled=True)

    cause = failed.value.__cause__
    assert "webhook_events" in str(cause)
    assert isinstance(cause, asyncpg.UndefinedTableError if using_postgres() else Exception)


async def test_a_batch_on_a_kept_connection_the_server_closed_is_stored_on_a_fresh_one(
    db: Database, new_writer: NewWriter, facturation_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A restart between two batches: the flusher's lingering connection is gone, so the batch
    is written again on a fresh connection and every delivery is answered as stored, none 503.
    PostgreSQL's server closes the connection; SQLite has no server, so there the next write
    meets what a socket cut under it raises, once."""
    writer = new_writer(linger=30)
    first = delivery(stripe_events.event("invoice.paid", stripe_events.invoice("paid")))
    after_restart = [
        delivery(stripe_events.event("invoice.paid", stripe_events.invoice("paid")))
        for _ in range(2)
    ]
    assert await writer.record(*first, handled=True)  # its flusher keeps the connection
    insert = JournalWriter._insert
    attempts: list[int] = []

    async def counted(connection: AsyncConnection, rows: list[dict[str, Any]]) -> set[str]:
        attempts.append(len(rows))
        if not using_postgres() and len(attempts) == 1:
            raise ConnectionResetError("connection reset by peer")
        return await insert(connection, rows)

    monkeypatch.setattr(JournalWriter, "_insert", staticmethod(counted))
    if using_postgres():
        assert await terminate_connections(facturation_url) >= 1

    results = await asyncio.gather(
        *(writer.record(envelope, payload, handled=True) for envelope, payload in after_restart)
    )

    assert results == [True, True]
    assert attempts == [2, 2]  # the batch whole, twice: not row by row
    assert await count_events(db) == 3


async def test_a_batch_that_loses_a_fresh_connection_fails_whole(
    db: Database, new_writer: NewWriter, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The database out of reach: the batch fails at once with the journal's error (503), not
    written again row by row nor retried again, and the next batch is stored once it is back."""
    writer = new_writer(linger=30)
    lost = [
        delivery(stripe_events.event("invoice.paid", stripe_events.invoice("paid")))
        for _ in range(2)
    ]
    later = delivery(stripe_events.event("invoice.paid", stripe_events.invoice("paid")))
    insert = JournalWriter._insert
    attempts: list[int] = []

    async def cut(connection: AsyncConnection, rows: list[dict[str, Any]]) -> set[str]:
        attempts.append(len(rows))
        if len(attempts) == 1:
            raise ConnectionResetError("connection reset by peer")
        return await insert(connection, rows)

    monkeypatch.setattr(JournalWriter, "_insert", staticmethod(cut))

    results = await asyncio.gather(
        *(writer.record(envelope, payload, handled=True) for envelope, payload in lost),
        return_exceptions=True,
    )
    stored_later = await writer.record(*later, handled=True)

    assert all(isinstance(result, JournalWriteError) for result in results), results
    assert attempts == [2, 1]
    assert stored_later is True
    assert [await get_event(db, envelope.id) is None for envelope, _ in lost] == [True, True]
    assert await count_events(db) == 1


async def test_an_ignored_type_is_stored_as_ignored(db: Database, new_writer: NewWriter) -> None:
    envelope, payload = delivery(stripe_events.customer_event())

    assert await new_writer().record(envelope, payload, handled=False)

    stored = await get_event(db, envelope.id)
    assert stored is not None
    assert (stored.status, stored.processed_at is not None) == ("ignored", True)


async def test_a_batch_stores_each_event_s_bookkeeping_as_a_lone_insert_would(
    db: Database, new_writer: NewWriter
) -> None:
    """Due at once and never attempted; an ignored one processed when received, a handled one
    not yet (on PostgreSQL the batch derives these columns from ``received_at`` and
    ``status``)."""
    handled = delivery(stripe_events.event("invoice.paid", stripe_events.invoice("paid")))
    ignored = delivery(stripe_events.customer_event())
    writer = new_writer()

    await asyncio.gather(
        writer.record(*handled, handled=True), writer.record(*ignored, handled=False)
    )

    pending, done = [await get_event(db, envelope.id) for envelope, _ in (handled, ignored)]
    assert pending is not None
    assert done is not None
    assert (pending.status, pending.attempts, pending.processed_at) == ("pending", 0, None)
    assert (done.status, done.attempts, done.processed_at) == ("ignored", 0, done.received_at)
    assert [pending.next_attempt_at, done.next_attempt_at] == [
        pending.received_at,
        done.received_at,
    ]


async def test_batches_written_at_once_store_each_repeated_event_once(
    db: Database, new_writer: NewWriter
) -> None:
    events = [stripe_events.event("invoice.paid", stripe_events.invoice("paid")) for _ in range(40)]
    # Every event three times, the repeats spread so they land in different batches.
    deliveries = [delivery(event) for event in events] * 3
    writer = new_writer(max_batch=8, max_flushes=4)

    async def deliver(index: int) -> bool:
        envelope, payload = deliveries[index]
        if index % 3:
            await asyncio.sleep(0)  # arrive in a later loop turn: another flusher's batch
        return await writer.record(envelope, payload, handled=True)

    results = await asyncio.gather(*(deliver(index) for index in range(len(deliveries))))

    assert sum(results) == 40
    new_ids = [envelope.id for (envelope, _), new in zip(deliveries, results, strict=True) if new]
    assert sorted(new_ids) == sorted(str(event["id"]) for event in events)
    assert await count_events(db) == 40


async def test_a_delivery_right_after_a_flusher_finished_gets_a_flusher_of_its_own(
    db: Database, new_writer: NewWriter
) -> None:
    """A flusher that returned leaves the set only in a later callback; a delivery made in
    between (SQLite: one flusher at a time) must not wait on it forever."""
    writer = new_writer(max_flushes=1)
    finished = asyncio.get_running_loop().create_future()
    finished.set_result(None)
    gone = asyncio.ensure_future(finished)
    await gone
    writer._flushers.add(gone)  # done, its discard callback not run yet
    envelope, payload = delivery(stripe_events.event("invoice.paid", stripe_events.invoice("paid")))

    stored = await asyncio.wait_for(writer.record(envelope, payload, handled=True), timeout=5)

    assert stored is True
    assert await count_events(db, envelope.id) == 1


async def test_deliveries_a_moment_apart_reuse_the_lingering_flushers_connection(
    db: Database, new_writer: NewWriter
) -> None:
    """No checkout (and no liveness ping) per gap in a burst; drain() does not wait out the
    linger."""
    checkouts: list[object] = []
    event.listen(db.engine.sync_engine, "checkout", lambda *args: checkouts.append(args))
    writer = new_writer(linger=30)

    for _ in range(3):
        envelope, payload = delivery(
            stripe_events.event("invoice.paid", stripe_events.invoice("paid"))
        )
        assert await writer.record(envelope, payload, handled=True)
        await asyncio.sleep(0.02)  # the flusher is idle now, its connection kept
    started = time.monotonic()
    await writer.drain()

    assert len(checkouts) == 1
    assert time.monotonic() - started < 5
    assert await count_events(db) == 3
