"""The loop that applies journaled Stripe events, inside the facturation service: claim, apply,
mark. What an event does lives in its domain module (``invoices.py``, ``order_events.py``);
``event_handlers`` is the one table saying which applies each type. The app builds the worker
once, with the journal writer it also hands to the webhook intake.

Each replica runs one loop. It claims due events (see :func:`journal.claim_events`), applies each
in one transaction together with marking it done, and on an error follows the shared error tree:
a ``shared.ClientError`` (the event itself is wrong, e.g. a malformed object) fails the event at
once; a ``shared.ServerError`` or any unexpected exception puts it back with an exponential
backoff, until its attempts are spent and it is marked ``failed``. The receiver wakes the
loop when it stores an event; a poll interval catches events stored by other replicas, retries
that fall due, and events whose lease ran out after a crash.

While the loop runs, the app's journal writer stores up to ``WorkerConfig.handoff`` events at a
time already claimed for it and hands them over (``journal.Handoff``): the loop applies them
without claiming them. It claims from the journal only when something there may be due: the
writer stored events ``pending`` (no room), its last claim was full, or a poll interval passed
(retries, other replicas' deliveries, leases run out). Then batches of handed events and
batches claimed take turns, so a stream of deliveries never holds back the backlog. A handed
event is under a lease like a claimed one: if the process dies, it is claimed again once the
lease has run out; if the loop stops first, it goes back to ``pending`` at once.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
import math
import random
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from datetime import datetime, timedelta
from typing import Any, Protocol, runtime_checkable

import msgspec
from prometheus_client import Counter, Gauge
from sqlalchemy.ext.asyncio import AsyncSession

from facturation_service import journal, order_events, refunds, subscription_slots, subscriptions
from facturation_service.invoices import (
    INVOICE_EVENT_TYPES,
    apply_invoice_snapshots,
    decode_invoice,
    link_invoices_to_users,
)
from facturation_service.journal import ClaimedEvent, EventStatus
from facturation_service.models import utcnow
from facturation_service.order_events import ORDER_EVENT_TYPES, apply_checkout_session_event
from facturation_service.settings import FacturationSettings
from facturation_service.stripe_api import StripeApi
from shared import ClientError, Database, ProblemError, UnprocessableError

__all__ = [
    "EVENTS_PROCESSED",
    "HANDLED_EVENT_TYPES",
    "LINK_WINDOW",
    "OLDEST_PENDING_AGE",
    "BatchHandler",
    "StripeEvent",
    "WebhookWorker",
    "WorkerConfig",
    "event_handlers",
    "worker_config",
]

logger = logging.getLogger("facturation_service.worker")

HANDLED_EVENT_TYPES = (
    INVOICE_EVENT_TYPES
    | ORDER_EVENT_TYPES
    | order_events.PAYMENT_EVENT_TYPES
    | subscriptions.SUBSCRIPTION_EVENT_TYPES
)

# Module-level, registered once per process however many apps a test process builds.
EVENTS_PROCESSED = Counter(
    "facturation_webhook_events_processed_total",
    "Stripe events the worker finished, by event type and outcome.",
    ["type", "outcome"],
)
OLDEST_PENDING_AGE = Gauge(
    "facturation_webhook_oldest_pending_event_age_seconds",
    "Age of the oldest journaled Stripe event not processed yet (0 when none).",
)
_oldest_pending: list[datetime | None] = [None]


def _oldest_pending_age() -> float:
    oldest = _oldest_pending[0]
    return 0.0 if oldest is None else max(0.0, (utcnow() - oldest).total_seconds())


OLDEST_PENDING_AGE.set_function(_oldest_pending_age)


class StripeEvent:
    """A claimed event: its ``data.object`` as Stripe wrote it (``object_json``), and as a
    dictionary (``object``, decoded when first read: the invoices' handler reads the JSON
    itself)."""

    __slots__ = ("_object", "created", "id", "object_json", "type")

    def __init__(self, id: str, type: str, created: int, object_json: bytes) -> None:
        self.id = id
        self.type = type
        self.created = created
        self.object_json = object_json
        self._object: dict[str, Any] | None = None

    @property
    def object(self) -> dict[str, Any]:
        if self._object is None:
            self._object = _OBJECT.decode(self.object_json)
        return self._object


class _EventData(msgspec.Struct):
    object: msgspec.Raw


class _EventBody(msgspec.Struct):
    """What the worker reads of an event's body: ``data.object``, kept as JSON."""

    data: _EventData


_EVENT_BODY = msgspec.json.Decoder(_EventBody)
_OBJECT = msgspec.json.Decoder(dict[str, Any])


Handler = Callable[[AsyncSession, StripeEvent], Awaitable[bool]]
"""Applies an event in the caller's transaction; ``False`` means it was not ours (ignored)."""


@runtime_checkable
class BatchHandler(Protocol):
    """A handler that can also apply several consecutive events of a batch at once, with the
    outcome of applying them one by one in that order (fewer statements, same state)."""

    async def __call__(self, session: AsyncSession, event: StripeEvent) -> bool: ...

    async def apply_many(self, session: AsyncSession, events: list[StripeEvent]) -> list[bool]: ...


class WorkerConfig(msgspec.Struct, frozen=True, kw_only=True):
    poll_interval: float = 1.0
    max_attempts: int = 8
    retry_base: float = 2.0
    retry_max: float = 3600.0
    lease: float = 60.0
    concurrency: int = 4
    """Batches (or, in :meth:`WebhookWorker.run_once`, events) applied at once."""
    batch_size: int = 64
    """Events the loop claims and applies in one transaction."""
    intake_quiet: float = 0.05
    """The window over which the loop measures how fast deliveries arrive, and its wait while
    they arrive at ``give_way_rate`` or faster: acknowledging a burst comes first,"""
    max_defer: float = 1.0
    """but never longer than this between two batches, so applying never stops."""
    give_way_rate: float = 500.0
    """Deliveries a second from which the loop gives way (0: never). A steadier stream is
    applied as it comes: giving way to every delivery applied one batch a second, and a stream
    of 100 deliveries a second fell further behind for as long as it lasted."""
    give_way_seconds: float = 10.0
    """The longest the loop gives way to one burst: past it, the burst is a stream, and applying
    takes its share of the CPU again, so the backlog stops growing."""
    handoff: int = 128
    """Events the intake may hand over claimed that no batch has taken yet (0: none, every event
    is claimed from the journal). Past it, deliveries are stored ``pending``: a burst waits in
    the journal, not in memory."""


def worker_config(settings: FacturationSettings) -> WorkerConfig:
    """The loop's configuration from the service's settings (the app and the ``worker``
    command read the same ones)."""
    return WorkerConfig(
        poll_interval=settings.facturation_webhook_poll_seconds,
        max_attempts=settings.facturation_webhook_max_attempts,
        retry_base=settings.facturation_webhook_retry_base_seconds,
        lease=settings.facturation_webhook_lease_seconds,
        concurrency=settings.facturation_webhook_concurrency,
        batch_size=settings.facturation_webhook_batch_size,
        give_way_rate=settings.facturation_webhook_give_way_rate,
        give_way_seconds=settings.facturation_webhook_give_way_seconds,
    )


def event_handlers(refetch_from: StripeApi | None = None) -> dict[str, Handler]:
    """What applies each handled event type: ``invoice.*`` → ``invoices.py`` (a paid
    subscription invoice also extends its entitlement, ``subscriptions.py``),
    ``checkout.session.*`` → ``order_events.py`` (an ended subscription checkout also frees the
    user's slot), ``customer.subscription.*`` → ``subscriptions.py``.

    Args:
        refetch_from: when given, the invoice is read from Stripe instead of trusting the
            event's snapshot; the fetched state is then as new as the moment it was read.
    """

    invoice_event = _InvoiceEvents(refetch_from)

    async def checkout_session_event(session: AsyncSession, event: StripeEvent) -> bool:
        applied = await apply_checkout_session_event(session, event.type, event.object)
        customer = event.object.get("customer")
        if isinstance(customer, str):
            await link_invoices_to_users(session, customer=customer)
        if event.type in _CHECKOUT_ENDED and isinstance(event.object.get("id"), str):
            await subscription_slots.release_checkout(session, event.object["id"])
        return applied

    async def subscription_event(session: AsyncSession, event: StripeEvent) -> bool:
        return await subscriptions.apply_subscription_snapshot(
            session, event.object, snapshot_created=event.created
        )

    handlers: dict[str, Handler] = dict.fromkeys(INVOICE_EVENT_TYPES, invoice_event)
    handlers.update(dict.fromkeys(ORDER_EVENT_TYPES, checkout_session_event))
    handlers.update(order_events.payment_event_handlers())  # issue 10: refunds and disputes
    handlers.update(dict.fromkeys(subscriptions.SUBSCRIPTION_EVENT_TYPES, subscription_event))
    return handlers


class _InvoiceEvents:
    """``invoice.*``: the snapshot stored unless a newer one is (``invoices.py``); a paid
    subscription invoice also extends its entitlement (issue 11, ``subscriptions.py``)."""

    def __init__(self, refetch_from: StripeApi | None) -> None:
        self.refetch_from = refetch_from

    async def __call__(self, session: AsyncSession, event: StripeEvent) -> bool:
        (applied,) = await self.apply_many(session, [event])
        return applied

    async def apply_many(self, session: AsyncSession, events: list[StripeEvent]) -> list[bool]:
        """Consecutive events of a batch, in order, with one upsert for their invoices."""
        snapshots = [(decode_invoice(event.object_json), event.created) for event in events]
        if self.refetch_from is not None:
            fetched = []
            for document, _ in snapshots:
                invoice = await self.refetch_from.retrieve_invoice(document.snapshot.id)
                as_json = msgspec.json.encode(invoice.to_dict(recursive=True, for_json=True))
                fetched.append((decode_invoice(as_json), int(time.time())))
            snapshots = fetched
        await apply_invoice_snapshots(session, snapshots)
        for document, _ in snapshots:
            # issue 11: each paid subscription invoice keeps the plan until its period's end.
            await subscriptions.extend_from_paid_invoice(session, document.snapshot)
        return [True] * len(events)


LINK_WINDOW = timedelta(hours=1)
"""How far back the housekeeping's sweep looks for customers mapped to a user, and for refunds
and disputes stored with no order, after its first sweep (which looks at all of them). A row is
committed a moment after its ``created_at`` or ``updated_at``; the hour also covers the clocks
of two replicas disagreeing."""

_CHECKOUT_ENDED = frozenset({"checkout.session.expired", "checkout.session.async_payment_failed"})


def _decode(claimed: ClaimedEvent) -> StripeEvent:
    try:
        found = _EVENT_BODY.decode(claimed.payload).data.object
    except msgspec.DecodeError as exc:  # a ValidationError too: no data.object
        raise UnprocessableError(f"event has no data.object: {exc}") from exc
    object_json = bytes(found)
    if not object_json.startswith(b"{"):  # a Raw holds the value alone, no space before it
        raise UnprocessableError("event data.object is not an object")
    return StripeEvent(claimed.id, claimed.type, claimed.created, object_json)


def _bursting(arrivals: collections.deque[float], now: float, config: WorkerConfig) -> bool:
    """Whether deliveries arrive at ``config.give_way_rate`` a second or faster: the latest
    ``k`` of ``arrivals`` came within ``k / give_way_rate`` seconds, ``k`` being as many as that
    rate brings in ``intake_quiet`` seconds (at most the :data:`journal.RECENT_DELIVERIES` kept)."""
    rate = config.give_way_rate
    if rate <= 0:
        return False
    latest = min(max(1, math.ceil(rate * config.intake_quiet)), journal.RECENT_DELIVERIES)
    return len(arrivals) >= latest and now - arrivals[-latest] <= latest / rate


class WebhookWorker:
    def __init__(
        self,
        database: Database,
        config: WorkerConfig | None = None,
        *,
        handlers: Mapping[str, Handler] | None = None,
        intake: journal.JournalWriter | None = None,
    ) -> None:
        """Apply the events journaled in ``database``.

        Args:
            handlers: by event type; :func:`event_handlers` when not given.
            intake: the app's journal writer, read only to give way to a burst of deliveries.
        """
        self.database = database
        self.intake = intake
        self.config = config or WorkerConfig()
        self.handlers = dict(handlers) if handlers is not None else event_handlers()
        self._wake = asyncio.Event()
        self._in_flight: set[asyncio.Task[None]] = set()
        self._last_housekeeping = 0.0
        self._first_sweep = True
        self._last_batch_at = 0.0
        self._burst_began: float | None = None
        """``time.monotonic()`` when the burst the loop gives way to was first seen."""
        self._stopping = False
        self._handed: collections.deque[ClaimedEvent] = collections.deque()
        """Events the intake stored claimed for this loop, that no batch has taken yet."""
        self._claim_turn = False
        """The next batch is claimed from the journal, if one is due, though handed events wait."""
        self._last_claim = -math.inf
        """``time.monotonic()`` when the loop last claimed from the journal,"""
        self._pending_seen = 0
        """and the intake's ``pending_stored`` just before it."""
        self._claim_wanted = False
        """The journal may hold more: the last claim took a whole batch, or :meth:`notify` was
        called since it began."""

    def notify(self) -> None:
        """Events were journaled or queued again outside the intake (a replay, a catch-up pass):
        claim now instead of at the next poll."""
        self._claim_wanted = True
        self._wake.set()

    def wake(self) -> None:
        """The intake stored an event: handed over, or counted in its ``pending_stored``."""
        self._wake.set()

    # journal.Handoff, while the loop runs

    @property
    def lease(self) -> timedelta:
        return timedelta(seconds=self.config.lease)

    def room(self) -> int:
        return 0 if self._stopping else max(0, self.config.handoff - len(self._handed))

    def take(self, events: list[ClaimedEvent]) -> bool:
        if self._stopping:
            return False
        self._handed.extend(events)
        self._wake.set()
        return True

    async def run_once(self, limit: int | None = None) -> int:
        """Claim due events and apply them; returns how many were claimed."""
        async with self.database.sessionmaker() as session:
            claimed = await journal.claim_events(
                session,
                limit=limit or self.config.concurrency,
                lease=timedelta(seconds=self.config.lease),
            )
        await asyncio.gather(*(self.process(event) for event in claimed))
        return len(claimed)

    async def drain(self) -> None:
        """Apply events until none is due (tests and benchmarks)."""
        while await self.run_once():
            pass

    async def process(self, claimed: ClaimedEvent) -> None:
        try:
            outcome = await self._apply(claimed)
        except ClientError as exc:  # the event itself is wrong: another attempt fails the same way
            await self._fail(claimed, exc, retry=False)
        except Exception as exc:  # a ServerError, or anything unexpected, may pass later
            await self._fail(claimed, exc, retry=True)
        else:
            if outcome is not None:
                EVENTS_PROCESSED.labels(type=claimed.type, outcome=outcome).inc()

    async def process_batch(self, claimed: list[ClaimedEvent]) -> None:
        """Apply claimed events in one transaction: one commit for many events. If any of them
        fails, the whole batch rolls back and each event is applied on its own, so one bad event
        neither holds back the others nor has its failure recorded on them."""
        if len(claimed) == 1:
            await self.process(claimed[0])
            return
        try:
            async with self.database.sessionmaker() as session, session.begin():
                outcomes = await self._apply_all(session, claimed)
        except Exception:
            logger.info("batch rolled back; applying its events one by one")
            for event in claimed:
                await self.process(event)
            return
        # One increment per type and outcome: ``labels`` costs more than the rest of the count.
        counts = collections.Counter(
            (event.type, outcome)
            for event, outcome in zip(claimed, outcomes, strict=True)
            if outcome is not None
        )
        for (type_, outcome), count in counts.items():
            EVENTS_PROCESSED.labels(type=type_, outcome=outcome).inc(count)

    async def _apply(self, claimed: ClaimedEvent) -> str | None:
        async with self.database.sessionmaker() as session, session.begin():
            (outcome,) = await self._apply_all(session, [claimed])
            if outcome is None:
                await session.rollback()
            return outcome

    async def _apply_all(
        self, session: AsyncSession, claimed: list[ClaimedEvent]
    ) -> list[str | None]:
        """Apply events in the caller's transaction; ``None`` for an event whose lease was lost."""
        # Marking first makes the transaction's first statement a write (SQLite then takes its
        # write lock up front) and skips events another worker took over.
        held = await journal.finish_events(session, claimed, EventStatus.PROCESSED)
        outcomes: list[str | None] = []
        index = 0
        while index < len(claimed):
            event = claimed[index]
            if event.id not in held:
                logger.warning("lease lost", extra={"event_id": event.id})
                outcomes.append(None)
                index += 1
                continue
            handler = self.handlers.get(event.type)
            if not isinstance(handler, BatchHandler):
                outcomes.append(await self._apply_held(session, event))
                index += 1
                continue
            # Consecutive held events of one batch handler are applied together, in order.
            run = [event]
            index += 1
            while (
                index < len(claimed)
                and claimed[index].id in held
                and self.handlers.get(claimed[index].type) is handler
            ):
                run.append(claimed[index])
                index += 1
            outcomes.extend(await self._apply_run(session, handler, run))
        return outcomes

    async def _apply_held(self, session: AsyncSession, claimed: ClaimedEvent) -> str:
        event = _decode(claimed)
        applied = False
        handler = self.handlers.get(claimed.type)
        if handler is not None:
            try:
                applied = await handler(session, event)
            except msgspec.DecodeError as exc:  # a ValidationError too
                raise UnprocessableError(f"{claimed.type}: {exc}") from exc
        if not applied:
            await journal.finish_event_as(session, claimed.id, EventStatus.IGNORED)
        return EventStatus.PROCESSED if applied else EventStatus.IGNORED

    async def _apply_run(
        self, session: AsyncSession, handler: BatchHandler, run: list[ClaimedEvent]
    ) -> list[str]:
        events = [_decode(claimed) for claimed in run]
        try:
            applied = await handler.apply_many(session, events)
        except msgspec.DecodeError as exc:  # a ValidationError too
            raise UnprocessableError(f"{run[0].type}: {exc}") from exc
        for claimed, was_applied in zip(run, applied, strict=True):
            if not was_applied:
                await journal.finish_event_as(session, claimed.id, EventStatus.IGNORED)
        return [EventStatus.PROCESSED if ok else EventStatus.IGNORED for ok in applied]

    async def _fail(self, claimed: ClaimedEvent, exc: Exception, *, retry: bool) -> None:
        error = f"{type(exc).__name__}: {exc}"
        retry_at: datetime | None = None
        if retry and claimed.attempts < self.config.max_attempts:
            delay = min(self.config.retry_base * 2 ** (claimed.attempts - 1), self.config.retry_max)
            retry_at = utcnow() + timedelta(seconds=delay * random.uniform(0.9, 1.1))  # noqa: S311
        log = logger.warning if retry_at else logger.error
        log(
            "webhook event failed",
            extra={
                "event_id": claimed.id,
                "event_type": claimed.type,
                "attempts": claimed.attempts,
                "error": error,
                "will_retry": retry_at is not None,
            },
        )
        if not isinstance(exc, ProblemError):
            logger.debug("handler error", exc_info=exc)
        EVENTS_PROCESSED.labels(
            type=claimed.type, outcome="retried" if retry_at else EventStatus.FAILED
        ).inc()
        try:
            async with self.database.sessionmaker() as session:
                await journal.record_failure(session, claimed, error, retry_at=retry_at)
        except Exception:
            # The lease runs out and the event is claimed again: nothing is lost.
            logger.exception("could not record the failure", extra={"event_id": claimed.id})

    async def housekeeping(self) -> None:
        now = time.monotonic()
        if now - self._last_housekeeping < self.config.poll_interval:
            return
        self._last_housekeeping = now
        # The first sweep looks at every invoice nobody owns and every orphan refund and
        # dispute; the next ones only at those of customers mapped, or stored, within
        # LINK_WINDOW (one stored while its mapping or its order's payment was being committed
        # is linked within a poll; the others were linked when stored).
        since = None if self._first_sweep else utcnow() - LINK_WINDOW
        async with self.database.sessionmaker() as session:
            async with session.begin():
                await link_invoices_to_users(session, mapped_since=since)
            async with session.begin():
                await refunds.link_orphans(session, stored_since=since)  # issue 10
            self._first_sweep = False
            _oldest_pending[0] = await journal.oldest_unprocessed_received_at(session)

    def _start(self, claimed: list[ClaimedEvent]) -> None:
        task = asyncio.create_task(self.process_batch(claimed))
        self._in_flight.add(task)

        def done(finished: asyncio.Task[None]) -> None:
            self._in_flight.discard(finished)
            self._wake.set()

        task.add_done_callback(done)

    def _giving_way_to_intake(self) -> bool:
        """During a burst of deliveries (``give_way_rate`` a second or more), for at most
        ``give_way_seconds`` of it, apply one batch per ``max_defer`` only: the CPU goes to
        acknowledging Stripe, and the backlog is applied as soon as the burst ends."""
        if self.intake is None:
            return False
        now = time.monotonic()
        if not _bursting(self.intake.recent_deliveries, now, self.config):
            self._burst_began = None
            return False
        if self._burst_began is None:
            self._burst_began = now
        return (
            now - self._burst_began < self.config.give_way_seconds
            and now - self._last_batch_at < self.config.max_defer
        )

    async def _next_batch(self) -> list[ClaimedEvent]:
        """Handed events, or due events claimed from the journal, taking turns while both wait;
        a claim that finds fewer than a batch is filled up with handed events."""
        size = self.config.batch_size
        claim_due = self._claim_due()
        if self._handed and not (self._claim_turn and claim_due):
            self._claim_turn = True
            return self._take_handed(size)
        self._claim_turn = False
        if not claim_due:
            return []
        pending_seen = self._pending_stored()
        self._claim_wanted = False
        async with self.database.sessionmaker() as session:
            claimed = await journal.claim_events(session, limit=size, lease=self.lease)
        self._last_claim = time.monotonic()
        self._claim_wanted = self._claim_wanted or len(claimed) == size
        self._pending_seen = pending_seen
        return claimed + self._take_handed(size - len(claimed))

    def _pending_stored(self) -> int:
        return 0 if self.intake is None else self.intake.pending_stored

    def _claim_due(self) -> bool:
        """Whether the journal may hold due events that were not handed over (always, when
        nothing is: a worker in its own process learns of new events from its polls only)."""
        return (
            self.intake is None
            or self.intake.handoff is not self
            or self._claim_wanted
            or self._pending_seen != self._pending_stored()
            or time.monotonic() - self._last_claim >= self.config.poll_interval
        )

    def _take_handed(self, limit: int) -> list[ClaimedEvent]:
        return [self._handed.popleft() for _ in range(min(limit, len(self._handed)))]

    async def run(self) -> None:
        """Loop until :meth:`stop`; each replica runs one."""
        if self.intake is not None and self.config.handoff > 0:
            self.intake.handoff = self
        while not self._stopping:
            self._wake.clear()
            try:
                await self.housekeeping()
                if self._giving_way_to_intake():
                    await asyncio.sleep(self.config.intake_quiet)
                    continue
                free = self.config.concurrency - len(self._in_flight)
                claimed: list[ClaimedEvent] = []
                # Stopping: claim nothing more, so no batch starts after ``stop`` drained them.
                if free > 0 and not self._stopping:
                    claimed = await self._next_batch()
                if claimed:
                    self._last_batch_at = time.monotonic()
                    self._start(claimed)
                    continue
            except Exception:
                logger.exception("webhook worker cycle failed")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self.config.poll_interval)

    async def stop(self, grace: float = 5.0) -> None:
        """Let events in flight finish; whatever does not is taken again after its lease."""
        self._stopping = True
        if self.intake is not None and self.intake.handoff is self:
            self.intake.handoff = None
        self._wake.set()
        if self._in_flight:
            await asyncio.wait(set(self._in_flight), timeout=grace)
        leftover = set(self._in_flight)
        for task in leftover:
            task.cancel()
        if leftover:
            # Unwound before the caller closes the engine, so no connection is left checked out.
            await asyncio.wait(leftover)
        await self._release_handed()

    async def _release_handed(self) -> None:
        """Handed events no batch took: ``pending`` again, for the next worker to take now."""
        handed = self._take_handed(len(self._handed))
        if not handed:
            return
        try:
            async with self.database.sessionmaker() as session, session.begin():
                await journal.release_events(await session.connection(), handed)
        except Exception:
            # Their lease runs out and they are claimed again: nothing is lost.
            logger.exception("could not release handed events", extra={"events": len(handed)})

    @contextlib.asynccontextmanager
    async def running(self) -> AsyncIterator[None]:
        """The loop as a background task for as long as the block runs (the app's lifespan)."""
        loop = asyncio.create_task(self.run(), name="webhook-worker")
        try:
            yield
        finally:
            # Stopping between cycles, not cancelling one, keeps database connections clean.
            await self.stop()
            try:
                await asyncio.wait_for(loop, timeout=5.0)
            except (TimeoutError, asyncio.CancelledError):
                loop.cancel()
            # A batch the loop started while ``stop`` was draining: drained too, before the
            # engine is disposed (a connection checked out then would never be closed).
            await self.stop()
