"""The worker: server errors and unexpected ones retried with backoff, client errors failed at
once, failures kept on the event, crashed attempts taken again, and claims that never hand one
event to two workers."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

import msgspec
import pytest
from prometheus_client import REGISTRY
from sqlalchemy import func, select, update

from facturation_service import journal
from facturation_service.journal import EventEnvelope, EventStatus, JournalWriter
from facturation_service.models import WebhookEvent
from facturation_service.worker import (
    EVENTS_PROCESSED,
    Handler,
    StripeEvent,
    WebhookWorker,
    WorkerConfig,
    event_handlers,
)
from shared import ConflictError, Database, GatewayTimeoutError, ProblemError
from tests.support import stripe_events
from tests.support.webhook_app import get_event, get_invoice, journal_event, wait_until

FAST = WorkerConfig(poll_interval=0.02, retry_base=0.0, max_attempts=5, lease=30.0)


def failing_first(times: int, real: Handler) -> tuple[Handler, list[int]]:
    calls: list[int] = []

    async def handler(session: object, event: StripeEvent) -> bool:
        calls.append(1)
        if len(calls) <= times:
            raise ConnectionError(f"database hiccup #{len(calls)}")
        return await real(session, event)  # type: ignore[arg-type]

    return handler, calls


async def test_a_handler_that_fails_twice_then_succeeds_ends_processed_with_three_attempts(
    db: Database,
) -> None:
    real = event_handlers()["invoice.paid"]
    handler, calls = failing_first(2, real)
    worker = WebhookWorker(db, FAST, handlers={"invoice.paid": handler})
    invoice = stripe_events.invoice("paid")
    event = stripe_events.event("invoice.paid", invoice)
    await journal_event(db, event)

    await worker.drain()

    stored = await get_event(db, event["id"])
    assert stored is not None
    assert (stored.status, stored.attempts) == ("processed", 3)
    assert stored.last_error == "ConnectionError: database hiccup #2"
    assert len(calls) == 3
    stored_invoice = await get_invoice(db, invoice["id"])
    assert stored_invoice is not None
    assert stored_invoice.status == "paid"


async def test_a_failure_waits_for_its_backoff_before_the_next_attempt(db: Database) -> None:
    handler, calls = failing_first(1, event_handlers()["invoice.paid"])
    config = WorkerConfig(retry_base=60.0, max_attempts=5)
    worker = WebhookWorker(db, config, handlers={"invoice.paid": handler})
    event = stripe_events.event("invoice.paid", stripe_events.invoice("paid"))
    await journal_event(db, event)

    await worker.drain()

    stored = await get_event(db, event["id"])
    assert stored is not None
    assert (stored.status, stored.attempts, len(calls)) == ("pending", 1, 1)
    assert stored.next_attempt_at - stored.received_at > timedelta(seconds=50)


async def test_an_event_that_keeps_failing_is_marked_failed_with_its_error(
    db: Database,
) -> None:
    handler, calls = failing_first(100, event_handlers()["invoice.paid"])
    worker = WebhookWorker(db, FAST, handlers={"invoice.paid": handler})
    event = stripe_events.event("invoice.paid", stripe_events.invoice("paid"))
    await journal_event(db, event)
    failed_before = EVENTS_PROCESSED.labels(type="invoice.paid", outcome="failed")._value.get()

    await worker.drain()

    stored = await get_event(db, event["id"])
    assert stored is not None
    assert (stored.status, stored.attempts, len(calls)) == ("failed", 5, 5)
    assert stored.last_error == "ConnectionError: database hiccup #5"
    failed_after = EVENTS_PROCESSED.labels(type="invoice.paid", outcome="failed")._value.get()
    assert failed_after == failed_before + 1


def _with_line_amount(amount: object) -> dict[str, Any]:
    invoice = stripe_events.invoice("paid", invoice_id="in_broken")
    invoice["lines"]["data"][0]["amount"] = amount
    return invoice


@pytest.mark.parametrize(
    "data",
    [
        {"object": {"id": "in_broken", "object": "invoice"}},  # no currency, no created
        {"object": {**stripe_events.invoice("paid", invoice_id="in_broken"), "total": "12"}},
        {"object": _with_line_amount(1.5)},  # a line's amount that is no integer
        {"object": ["in_broken"]},  # data.object not an object
        {"object": None},
        {},  # no data.object
    ],
    ids=["no-invoice", "amount-a-string", "line-amount-a-float", "a-list", "null", "no-object"],
)
async def test_an_invoice_event_without_an_invoice_fails_at_once_without_retries(
    db: Database, data: dict[str, Any]
) -> None:
    event = stripe_events.event("invoice.paid", {})
    event["data"] = data
    await journal_event(db, event)

    await WebhookWorker(db, FAST).drain()

    stored = await get_event(db, event["id"])
    assert stored is not None
    assert (stored.status, stored.attempts) == ("failed", 1)
    assert stored.last_error is not None
    assert stored.last_error.startswith("UnprocessableError: ")


@pytest.mark.parametrize(
    ("error", "status", "attempts"),
    [
        (ConflictError("this invoice contradicts what is stored"), "failed", 1),
        (GatewayTimeoutError("Stripe did not answer in time."), "processed", 2),
    ],
    ids=["client-error-fails-at-once", "server-error-is-retried"],
)
async def test_a_client_error_fails_the_event_at_once_and_a_server_error_is_retried(
    db: Database, error: ProblemError, status: str, attempts: int
) -> None:
    real = event_handlers()["invoice.paid"]
    calls: list[int] = []

    async def handler(session: object, event: StripeEvent) -> bool:
        calls.append(1)
        if len(calls) == 1:
            raise error
        return await real(session, event)  # type: ignore[arg-type]

    worker = WebhookWorker(db, FAST, handlers={"invoice.paid": handler})
    event = stripe_events.event("invoice.paid", stripe_events.invoice("paid"))
    await journal_event(db, event)

    await worker.drain()

    stored = await get_event(db, event["id"])
    assert stored is not None
    assert (stored.status, stored.attempts, len(calls)) == (status, attempts, attempts)
    assert stored.last_error == f"{type(error).__name__}: {error}"


async def test_an_event_left_processing_by_a_crashed_worker_is_processed_after_its_lease(
    db: Database,
) -> None:
    invoice = stripe_events.invoice("paid")
    event = stripe_events.event("invoice.paid", invoice)
    await journal_event(db, event)
    # The crashed worker claimed the event, then died before committing anything else.
    async with db.sessionmaker() as session:
        crashed = await journal.claim_events(session, limit=1, lease=timedelta(seconds=0.3))
    assert [claimed.id for claimed in crashed] == [event["id"]]
    restarted = WebhookWorker(db, FAST)

    assert await restarted.run_once() == 0  # the lease still holds
    await asyncio.sleep(0.4)
    await restarted.drain()

    stored = await get_event(db, event["id"])
    assert stored is not None
    assert (stored.status, stored.attempts) == ("processed", 2)
    stored_invoice = await get_invoice(db, invoice["id"])
    assert stored_invoice is not None
    assert stored_invoice.status == "paid"


async def test_a_worker_whose_lease_was_taken_over_does_not_mark_the_event(
    db: Database,
) -> None:
    event = stripe_events.event("invoice.paid", stripe_events.invoice("paid"))
    await journal_event(db, event)
    async with db.sessionmaker() as session:
        (slow,) = await journal.claim_events(session, limit=1, lease=timedelta(seconds=-1))
        (fast,) = await journal.claim_events(session, limit=1, lease=timedelta(seconds=30))
    assert slow.claim_token != fast.claim_token

    await WebhookWorker(db, FAST).process(slow)

    stored = await get_event(db, event["id"])
    assert stored is not None
    assert (stored.status, stored.claim_token) == ("processing", fast.claim_token)


async def test_concurrent_claims_never_hand_one_event_to_two_workers(db: Database) -> None:
    events = [stripe_events.event("invoice.paid", stripe_events.invoice("paid")) for _ in range(40)]
    for event in events:
        await journal_event(db, event)

    async def claimer() -> list[str]:
        taken: list[str] = []
        while True:
            async with db.sessionmaker() as session:
                claimed = await journal.claim_events(session, limit=3, lease=timedelta(seconds=30))
            if not claimed:
                return taken
            taken.extend(event.id for event in claimed)

    results = await asyncio.gather(*(claimer() for _ in range(6)))

    taken = [event_id for result in results for event_id in result]
    assert sorted(taken) == sorted(event["id"] for event in events)


async def test_the_running_loop_is_woken_by_notify_and_stops_cleanly(db: Database) -> None:
    worker = WebhookWorker(db, WorkerConfig(poll_interval=30.0))
    event = stripe_events.event("invoice.paid", stripe_events.invoice("paid"))
    loop = asyncio.create_task(worker.run())
    await asyncio.sleep(0.1)

    await journal_event(db, event)
    worker.notify()
    for _ in range(100):
        stored = await get_event(db, event["id"])
        if stored is not None and stored.status == "processed":
            break
        await asyncio.sleep(0.02)
    await worker.stop()
    await asyncio.wait_for(loop, 5)

    assert stored is not None
    assert stored.status == "processed"


async def test_replay_queues_a_processed_event_again(db: Database) -> None:
    event = stripe_events.event("invoice.paid", stripe_events.invoice("paid"))
    await journal_event(db, event)
    await WebhookWorker(db, FAST).drain()
    async with db.sessionmaker() as session:
        await session.execute(
            update(WebhookEvent).where(WebhookEvent.id == event["id"]).values(attempts=4)
        )
        await session.commit()
        replayed = await journal.replay_event(session, event["id"])
    assert replayed is not None
    assert (replayed.status, replayed.attempts) == ("pending", 0)

    await WebhookWorker(db, FAST).drain()

    stored = await get_event(db, event["id"])
    assert stored is not None
    assert (stored.status, stored.attempts) == ("processed", 1)


async def test_a_failing_event_in_a_batch_does_not_hold_back_the_others(
    db: Database,
) -> None:
    real = event_handlers()["invoice.paid"]
    broken = stripe_events.invoice("paid")

    async def handler(session: object, event: StripeEvent) -> bool:
        if event.object["id"] == broken["id"]:
            raise ConnectionError("this one invoice cannot be stored")
        return await real(session, event)  # type: ignore[arg-type]

    events = [stripe_events.event("invoice.paid", stripe_events.invoice("paid")) for _ in range(4)]
    events.insert(2, stripe_events.event("invoice.paid", broken))
    for event in events:
        await journal_event(db, event)
    worker = WebhookWorker(db, FAST, handlers={"invoice.paid": handler})
    async with db.sessionmaker() as session:
        claimed = await journal.claim_events(session, limit=10, lease=timedelta(seconds=30))

    await worker.process_batch(claimed)

    statuses = {}
    for event in events:
        stored = await get_event(db, event["id"])
        assert stored is not None
        statuses[event["id"]] = (stored.status, stored.attempts)
    assert statuses.pop(events[2]["id"]) == ("pending", 1)
    assert set(statuses.values()) == {("processed", 1)}


@asynccontextmanager
async def simulated_burst(intake: JournalWriter) -> AsyncIterator[None]:
    """2,000 deliveries a second while inside (only their times: none is written), under way
    for more than the loop's measure (``intake_quiet``, 0.1 s in these tests) on entering."""
    over = asyncio.Event()

    async def burst() -> None:
        while not over.is_set():
            intake.recent_deliveries.extend([time.monotonic()] * 20)
            await asyncio.sleep(0.01)

    bursting = asyncio.create_task(burst())
    await asyncio.sleep(0.15)
    try:
        yield
    finally:
        over.set()
        await bursting


async def _loop_with_a_first_batch(
    db: Database, config: WorkerConfig
) -> tuple[WebhookWorker, JournalWriter, asyncio.Task[None]]:
    """A running loop that has just applied a batch (the time of its last one is known)."""
    intake = JournalWriter(db.engine)
    worker = WebhookWorker(db, config, intake=intake)
    first = stripe_events.event("invoice.paid", stripe_events.invoice("paid"))
    await journal_event(db, first)
    loop = asyncio.create_task(worker.run())
    await wait_until(lambda: get_event(db, first["id"]), status="processed")
    return worker, intake, loop


async def test_during_a_burst_of_deliveries_the_loop_defers_applying_until_it_ends(
    db: Database,
) -> None:
    config = WorkerConfig(poll_interval=0.05, intake_quiet=0.1, max_defer=30.0)
    worker, intake, loop = await _loop_with_a_first_batch(db, config)
    second = stripe_events.event("invoice.paid", stripe_events.invoice("paid"))
    async with simulated_burst(intake):
        await journal_event(db, second)
        worker.notify()
        await asyncio.sleep(0.5)
        during = await get_event(db, second["id"])
    after = await wait_until(lambda: get_event(db, second["id"]), status="processed")
    await worker.stop()
    await asyncio.wait_for(loop, 5)

    assert during is not None
    assert during.status == "pending"
    assert after.attempts == 1


async def test_a_burst_longer_than_the_give_way_seconds_is_applied_while_it_lasts(
    db: Database,
) -> None:
    config = WorkerConfig(
        poll_interval=0.05, intake_quiet=0.1, max_defer=30.0, give_way_seconds=0.3
    )
    worker, intake, loop = await _loop_with_a_first_batch(db, config)
    second = stripe_events.event("invoice.paid", stripe_events.invoice("paid"))
    async with simulated_burst(intake):
        await journal_event(db, second)
        worker.notify()
        # Applied while the burst goes on (it would wait for max_defer, 30 s, otherwise).
        during = await wait_until(lambda: get_event(db, second["id"]), status="processed")
    await worker.stop()
    await asyncio.wait_for(loop, 5)

    assert during.attempts == 1


async def test_a_steady_stream_of_deliveries_below_the_give_way_rate_is_applied_as_it_comes(
    db: Database,
) -> None:
    # About 100 deliveries a second, each recorded by the intake's writer as the receiver
    # records it. Giving way whenever a delivery had come in the last 50 ms, the loop applied
    # one batch a second, and ended this stream more than 60 events behind.
    intake = JournalWriter(db.engine)
    worker = WebhookWorker(db, WorkerConfig(poll_interval=0.05), intake=intake)
    loop = asyncio.create_task(worker.run())
    started = time.monotonic()
    delivered = 0
    while time.monotonic() - started < 1.5:
        body = stripe_events.encode(
            stripe_events.event("invoice.paid", stripe_events.invoice("paid"))
        )
        envelope = msgspec.json.decode(body, type=EventEnvelope)
        assert await intake.record(envelope, body.decode(), handled=True)
        worker.notify()
        delivered += 1
        await asyncio.sleep(0.01)
    behind = await _unapplied(db)
    await worker.stop()
    await asyncio.wait_for(loop, 5)
    await intake.drain()

    assert delivered >= 60
    assert behind <= 15


async def _unapplied(db: Database) -> int:
    async with db.sessionmaker() as session:
        count = await session.scalar(
            select(func.count())
            .select_from(WebhookEvent)
            .where(WebhookEvent.status.in_([EventStatus.PENDING, EventStatus.PROCESSING]))
        )
    return int(count or 0)


async def test_the_oldest_pending_age_gauge_follows_the_journal(db: Database) -> None:
    event = stripe_events.event("invoice.paid", stripe_events.invoice("paid"))
    await journal_event(db, event)
    async with db.sessionmaker() as session:
        await session.execute(
            update(WebhookEvent)
            .where(WebhookEvent.id == event["id"])
            .values(received_at=datetime.now(UTC) - timedelta(seconds=120))
        )
        await session.commit()
    worker = WebhookWorker(db, WorkerConfig(poll_interval=0.0))

    await worker.housekeeping()
    waiting = REGISTRY.get_sample_value("facturation_webhook_oldest_pending_event_age_seconds")
    await worker.drain()
    await worker.housekeeping()
    done = REGISTRY.get_sample_value("facturation_webhook_oldest_pending_event_age_seconds")

    assert waiting is not None
    assert waiting >= 120
    assert done == 0.0


async def test_a_batch_claimed_while_the_worker_stops_is_finished_before_running_returns(
    db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Its connection is back in the pool before the app disposes the engine."""
    worker = WebhookWorker(db, FAST)
    claiming = asyncio.Event()
    finished: list[str] = []

    async def claim_while_stopping(*_args: object, **_kwargs: object) -> list[object]:
        claiming.set()
        await asyncio.sleep(0.1)  # ``stop`` drains the (empty) in-flight set meanwhile
        return [object()]

    async def slow_batch(_claimed: object) -> None:
        await asyncio.sleep(0.1)
        finished.append("batch")

    monkeypatch.setattr(journal, "claim_events", claim_while_stopping)
    monkeypatch.setattr(worker, "process_batch", slow_batch)

    async with worker.running():
        await claiming.wait()

    assert finished == ["batch"]
