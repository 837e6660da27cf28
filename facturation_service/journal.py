"""The webhook journal, the ``webhook_events`` table, and every statement on it: the intake
stores each verified Stripe event once by its id (``JournalWriter``, one per app, built by the
app); the worker claims, marks and fails events; operators list and replay them.

An event's life: ``pending`` → ``processing`` (claimed, under a lease) → ``processed`` |
``ignored`` | back to ``pending`` with a later ``next_attempt_at`` after a server-side failure |
``failed`` at once for a client error, or once its attempts are spent. An event left
``processing`` by a crash is claimed again when its lease has run out.

While the app's worker runs, the writer stores the events it has room for already claimed for
it (``processing``, under a lease, its first attempt) and hands them over once stored
(:class:`Handoff`): the worker applies them without claiming them again, which saved the claim's
``UPDATE`` of each row and its read of the payload back. The others are stored ``pending``.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import time
from collections import deque
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Annotated, Any, Protocol, cast

import msgspec
from sqlalchemy import (
    Integer,
    Table,
    and_,
    any_,
    bindparam,
    func,
    select,
    text,
    union_all,
    update,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, AsyncSession

from facturation_service.bounds import INT64_MAX
from facturation_service.models import UNPROCESSED_EVENTS, WebhookEvent, utcnow
from shared import DATABASE_ERRORS, is_lost_connection

__all__ = [
    "ClaimedEvent",
    "EventEnvelope",
    "EventStatus",
    "Handoff",
    "JournalWriteError",
    "JournalWriter",
    "claim_events",
    "finish_event_as",
    "finish_events",
    "get_event",
    "list_events",
    "oldest_unprocessed_received_at",
    "record_event",
    "record_failure",
    "record_listed_events",
    "release_events",
    "replay_event",
]

logger = logging.getLogger("facturation_service.journal")

_MAX_ERROR_LENGTH = 2000


class EventStatus(StrEnum):
    PENDING = "pending"
    PROCESSING = "processing"
    PROCESSED = "processed"
    FAILED = "failed"
    IGNORED = "ignored"


class EventEnvelope(msgspec.Struct):
    """The fields of a Stripe event the journal needs; every other field is accepted and kept in
    the raw payload."""

    # Bounded by the journal's columns, so a signed oddity is a 400, never a failed insert.
    id: Annotated[str, msgspec.Meta(min_length=1, max_length=255)]
    type: Annotated[str, msgspec.Meta(min_length=1, max_length=128)]
    created: Annotated[int, msgspec.Meta(ge=0, le=INT64_MAX)]
    livemode: bool = False
    api_version: Annotated[str, msgspec.Meta(max_length=64)] | None = None


class JournalWriteError(Exception):
    """The journal could not store the batch holding an event: nothing of it was stored. Its
    ``__cause__`` is the database's, the driver's or the network's error."""


class ClaimedEvent(msgspec.Struct, frozen=True):
    id: str
    type: str
    created: int
    payload: str
    attempts: int
    claim_token: str


class Handoff(Protocol):
    """What takes the events the writer stores claimed: the app's worker, while its loop runs."""

    @property
    def lease(self) -> timedelta:
        """How long a claim lasts."""
        ...

    def room(self) -> int:
        """How many more events it takes now."""
        ...

    def take(self, events: list[ClaimedEvent]) -> bool:
        """The stored events, claimed for it; ``False`` when it no longer runs (the writer then
        releases them to ``pending``)."""
        ...


_EVENTS = WebhookEvent.__table__
# Built once per dialect: the receiver's hot path only binds parameters.
_RECORD_STATEMENTS: dict[str, Any] = {
    name: dialect.insert(_EVENTS)
    .on_conflict_do_nothing(index_elements=["id"])
    .returning(_EVENTS.c.id)
    for name, dialect in (("postgresql", postgresql), ("sqlite", sqlite))
}
# The group commit's batch on PostgreSQL: one array per column, so the statement is the same
# whatever the batch size and is prepared once per connection (a multi-row VALUES is a new
# statement, prepared and planned, for every size; its rows cost SQLAlchemy more to bind too).
# Strings go as text[]: a cast to varchar(n) would cut a long value that the INSERT refuses.
# The three columns that follow from the others (as ``_record_parameters`` sets them) are
# derived by the statement: each array element costs the driver more than the server.
_BATCH_COLUMNS = {
    "id": "text",
    "type": "text",
    "api_version": "text",
    "created": "bigint",
    "livemode": "boolean",
    "payload": "text",
    "received_at": "timestamptz",
    "status": "text",
    "locked_until": "timestamptz",
    "claim_token": "text",
}
_DERIVED_COLUMNS = {
    "attempts": f"CASE WHEN status = '{EventStatus.PROCESSING}' THEN 1 ELSE 0 END",
    "next_attempt_at": "received_at",
    "processed_at": (
        f"CASE WHEN status IN ('{EventStatus.PENDING}', '{EventStatus.PROCESSING}') THEN NULL"
        " ELSE received_at END"
    ),
}
_PG_BATCH = "".join(
    (
        f"INSERT INTO {WebhookEvent.__tablename__} ",
        f"({', '.join([*_BATCH_COLUMNS, *_DERIVED_COLUMNS])}) ",
        f"SELECT {', '.join([*_BATCH_COLUMNS, *_DERIVED_COLUMNS.values()])} FROM unnest(",  # noqa: S608 - constants
        ", ".join(f"${n}::{kind}[]" for n, kind in enumerate(_BATCH_COLUMNS.values(), 1)),
        f") AS batch({', '.join(_BATCH_COLUMNS)}) ON CONFLICT (id) DO NOTHING RETURNING id",
    )
)


def _record_parameters(envelope: EventEnvelope, payload: str, *, handled: bool) -> dict[str, Any]:
    now = utcnow()
    return {
        "id": envelope.id,
        "type": envelope.type,
        "api_version": envelope.api_version,
        "created": envelope.created,
        "livemode": envelope.livemode,
        "payload": payload,
        "received_at": now,
        "status": EventStatus.PENDING if handled else EventStatus.IGNORED,
        "attempts": 0,
        "next_attempt_at": now,
        "processed_at": None if handled else now,
        "locked_until": None,
        "claim_token": None,
    }


def _claim_rows(rows: list[dict[str, Any]], handoff: Handoff) -> None:
    """Claim for ``handoff`` as many of the pending ``rows`` (to be stored) as it has room for,
    under one token, as :func:`claim_events` would have once they were stored."""
    room = handoff.room()
    if room <= 0:
        return
    token = secrets.token_hex(16)
    locked_until = utcnow() + handoff.lease
    for row in rows:
        if room == 0:
            return
        if row["status"] == EventStatus.PENDING and row["claim_token"] is None:
            row.update(
                status=EventStatus.PROCESSING,
                attempts=1,
                locked_until=locked_until,
                claim_token=token,
            )
            room -= 1


def _unclaim_rows(rows: list[dict[str, Any]]) -> None:
    """Rows claimed by :func:`_claim_rows` stored ``pending`` after all."""
    for row in rows:
        if row["claim_token"] is not None:
            row.update(status=EventStatus.PENDING, attempts=0, locked_until=None, claim_token=None)


def _claimed(row: dict[str, Any]) -> ClaimedEvent:
    return ClaimedEvent(
        id=row["id"],
        type=row["type"],
        created=row["created"],
        payload=row["payload"],
        attempts=row["attempts"],
        claim_token=row["claim_token"],
    )


async def record_event(
    session: AsyncSession, envelope: EventEnvelope, payload: str, *, handled: bool
) -> bool:
    """Store the event once, durably when this returns; ``False`` when this id was already
    journaled. Call it first in a fresh session."""
    # One statement needs no transaction around it: autocommit saves the BEGIN and COMMIT round
    # trips.
    connection = await session.connection(execution_options={"isolation_level": "AUTOCOMMIT"})
    statement = _RECORD_STATEMENTS[connection.dialect.name]
    parameters = _record_parameters(envelope, payload, handled=handled)
    inserted = (await connection.execute(statement, parameters)).scalar_one_or_none()
    return inserted is not None


RECENT_DELIVERIES = 64
"""How many delivery times :class:`JournalWriter` keeps, for the worker's measure of a burst."""


class JournalWriter:
    """Group commit for the receiver: the events of concurrent requests are written by one
    multi-row INSERT, and each request is answered once the batch holding its event committed.

    One database round trip then serves many deliveries, which is where the receiver's time went.
    On PostgreSQL up to ``max_flushes`` batches are written at once (a delivery that arrives
    while one batch commits goes into the next one, on another connection, instead of waiting
    for that commit): the commits overlap, and the server flushes its log for them together.
    Each batch is sorted by event id, so two batches holding the same ids lock them in the same
    order and never deadlock. SQLite has one writer: one batch at a time there.

    A flusher keeps its connection while deliveries keep coming (``linger``), without the pool's
    ping: a batch that finds that connection closed by the server (a restart) is written again
    once, on a fresh one. A batch that loses a fresh connection fails whole (503: Stripe sends
    it again); one that fails any other way is written again row by row, so one bad event does
    not fail its neighbours.
    """

    def __init__(
        self,
        engine: AsyncEngine,
        *,
        max_batch: int = 256,
        max_flushes: int | None = None,
        linger: float = 0.1,
    ) -> None:
        self.engine = engine
        self.max_batch = max_batch
        if max_flushes is None:
            max_flushes = 1 if engine.dialect.name == "sqlite" else 4
        self.max_flushes = max_flushes
        self.linger = linger
        """Seconds a flusher with nothing left to write keeps its connection for the next
        delivery: the pool's liveness ping (three round trips with asyncpg) was paid again
        after every gap of one loop turn in a burst."""
        self._pending: list[tuple[dict[str, Any], asyncio.Future[bool]]] = []
        self._flushers: set[asyncio.Task[None]] = set()
        # The flusher created (or woken) that has not taken its batch yet (a task that never
        # ran, its loop gone, is done: it does not block the next one).
        self._waiting_flusher: asyncio.Task[None] | None = None
        # Flushers lingering with their connection, each with the future that wakes it.
        self._idle: list[tuple[asyncio.Task[None], asyncio.Future[None]]] = []
        self._closing = False
        self.recent_deliveries: deque[float] = deque(maxlen=RECENT_DELIVERIES)
        """``time.monotonic()`` of the latest deliveries, newest last: the worker gives way to a
        burst of them."""
        self.handoff: Handoff | None = None
        """Set by the app's worker while its loop runs: the events it has room for are stored
        claimed for it, and handed over."""
        self.pending_stored = 0
        """How many events this writer has stored ``pending`` (not handed over): the worker
        claims from the journal when it grew."""

    def record(
        self, envelope: EventEnvelope, payload: str, *, handled: bool
    ) -> asyncio.Future[bool]:
        """The event into the next batch: the future of :func:`record_event`'s answer (``False``
        when the event id was already journaled), done once its batch committed; or of a
        :class:`JournalWriteError`, when nothing of it was stored."""
        self.recent_deliveries.append(time.monotonic())
        future: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
        self._pending.append((_record_parameters(envelope, payload, handled=handled), future))
        # A new flusher only when every running one is busy writing: the deliveries of one
        # loop turn go to the flusher about to start, in one batch.
        waiting = self._waiting_flusher
        # Finished flushers do not count: one that just returned leaves the set only in a
        # callback run later, and a delivery in between would wait on it forever.
        running = sum(1 for flusher in self._flushers if not flusher.done())
        if (waiting is None or waiting.done()) and self._idle:
            flusher, wake = self._idle.pop()  # the newest: its connection was used last
            wake.set_result(None)
            self._waiting_flusher = flusher
        elif (waiting is None or waiting.done()) and running < self.max_flushes:
            flusher = asyncio.create_task(self._flush())
            self._waiting_flusher = flusher
            self._flushers.add(flusher)
            flusher.add_done_callback(self._flushers.discard)
        # A request cancelled while it waits (its client left) cancels only its own future:
        # the batch still holds its row, and the flusher skips an answer nobody waits for.
        return future

    async def drain(self) -> None:
        """Wait for the flushers still writing or closing their connection (at shutdown, before
        the engine is disposed: a connection checked out then would never be closed); the
        lingering ones close theirs at once, and from now on every flusher does."""
        self._closing = True
        for _, wake in self._idle:
            wake.set_result(None)
        self._idle.clear()
        if self._flushers:
            await asyncio.wait(set(self._flushers))

    async def _flush(self) -> None:
        self._waiting_flusher = None  # it takes its batch now, before its first await
        # Kept from one batch to the next while deliveries keep coming, and for ``linger``
        # seconds after: the pool's liveness ping (three round trips with asyncpg) is paid once
        # per burst, not once per batch.
        connection: AsyncConnection | None = None
        kept = False  # the connection has stored a batch already
        try:
            while True:
                if self._waiting_flusher is asyncio.current_task():
                    self._waiting_flusher = None  # woken from its linger: it takes the batch
                while self._pending:
                    batch = self._pending[: self.max_batch]
                    self._pending = self._pending[self.max_batch :]
                    batch.sort(key=_event_id)
                    handoff = self.handoff
                    if handoff is not None:
                        # A batch written again keeps the claims it was given.
                        _claim_rows([row for row, _ in batch], handoff)
                    try:
                        if connection is None:
                            connection, kept = await self._connect(), False
                        inserted = await self._insert(connection, [row for row, _ in batch])
                    except Exception as exc:
                        lost = is_lost_connection(exc)
                        if connection is not None:
                            # Broken or not, it goes back (or is dropped) before anything else.
                            if lost:
                                await connection.invalidate()
                            await connection.close()
                            connection = None
                        if kept and lost:
                            # A kept connection the server closed meanwhile (a restart): the
                            # batch goes again, first, on a fresh one. Had it been stored, the
                            # events come back as repeats (ON CONFLICT DO NOTHING).
                            self._pending[:0] = batch
                            continue
                        await self._failed(batch, exc)
                        continue
                    kept = True
                    handed: list[ClaimedEvent] = []
                    for parameters, future in batch:
                        # The same event twice in one batch: the first delivery stored it.
                        new = parameters["id"] in inserted
                        inserted.discard(parameters["id"])
                        if new and parameters["claim_token"] is not None:
                            handed.append(_claimed(parameters))
                        elif new and parameters["status"] == EventStatus.PENDING:
                            self.pending_stored += 1
                        if not future.done():
                            future.set_result(new)
                    if handed and (handoff is None or not handoff.take(handed)):
                        await _release_handed(connection, handed)
                if connection is None:
                    return  # nothing pending, and no await since it was checked
                if await self._lingered():
                    continue  # a delivery woke it: same connection, no ping
                await connection.close()
                connection = None
                # Deliveries that came while it closed counted on this flusher: look again.
        finally:
            if connection is not None:
                await connection.close()

    async def _lingered(self) -> bool:
        """Wait up to ``linger`` seconds for a delivery; ``True`` when one woke this flusher."""
        if self._closing or self.linger <= 0:
            return False
        task = asyncio.current_task()
        assert task is not None
        wake: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        entry = (task, wake)
        self._idle.append(entry)
        try:
            await asyncio.wait((wake,), timeout=self.linger)
        finally:
            if entry in self._idle:  # not woken: nobody will, it closes its connection
                self._idle.remove(entry)
        # Woken by drain() at shutdown counts as not woken: nothing new to write.
        return wake.done() and not self._closing

    async def _failed(
        self, batch: list[tuple[dict[str, Any], asyncio.Future[bool]]], exc: Exception
    ) -> None:
        if len(batch) == 1 or is_lost_connection(exc):
            for _, future in batch:  # each waiting request answers 5xx
                if not future.done():
                    future.set_exception(_write_error(exc))
        else:
            # One bad row must not fail its neighbours: the statement stored nothing,
            # so each event is written again on its own and only the bad one fails (pending,
            # for the worker to claim: nothing is handed over on this path).
            _unclaim_rows([row for row, _ in batch])
            await self._insert_one_by_one(batch)

    async def _insert_one_by_one(
        self, batch: list[tuple[dict[str, Any], asyncio.Future[bool]]]
    ) -> None:
        for parameters, future in batch:
            try:
                async with self.engine.connect() as connection:
                    autocommit = await connection.execution_options(isolation_level="AUTOCOMMIT")
                    new = parameters["id"] in await self._insert(autocommit, [parameters])
            except Exception as exc:
                if not future.done():
                    future.set_exception(_write_error(exc))
            else:
                if new and parameters["status"] == EventStatus.PENDING:
                    self.pending_stored += 1
                if not future.done():
                    future.set_result(new)

    async def _connect(self) -> AsyncConnection:
        connection = await self.engine.connect()
        try:
            return await connection.execution_options(isolation_level="AUTOCOMMIT")
        except BaseException:
            await connection.close()
            raise

    @staticmethod
    async def _insert(connection: AsyncConnection, rows: list[dict[str, Any]]) -> set[str]:
        if connection.dialect.name == "postgresql":
            # Straight to asyncpg, in autocommit as the connection is: SQLAlchemy's execution
            # and result layers took a third of the CPU of writing a batch (230 of 690 µs for
            # 12 Stripe events), more than binding the statement did.
            driver = (await connection.get_raw_connection()).driver_connection
            assert driver is not None  # a checked-out connection has one
            columns = [[row[name] for row in rows] for name in _BATCH_COLUMNS]
            return {record[0] for record in await driver.fetch(_PG_BATCH, *columns)}
        result = await connection.execute(_RECORD_STATEMENTS[connection.dialect.name], rows)
        return {row.id for row in result}


async def _release_handed(connection: AsyncConnection, events: list[ClaimedEvent]) -> None:
    """Events stored claimed for a worker that stopped meanwhile: back to ``pending`` now, or,
    if that fails, when their lease runs out."""
    try:
        await release_events(connection, events)
    except DATABASE_ERRORS:
        logger.warning("could not release handed events", extra={"events": len(events)})


def _event_id(item: tuple[dict[str, Any], asyncio.Future[bool]]) -> str:
    return str(item[0]["id"])


def _write_error(exc: Exception) -> Exception:
    """What a delivery's future fails with when ``exc`` failed its batch's write: a
    :class:`JournalWriteError`, or ``exc`` itself when it is no write error (a bug)."""
    if not isinstance(exc, DATABASE_ERRORS):
        return exc
    error = JournalWriteError(f"The journal could not store the batch: {type(exc).__name__}.")
    error.__cause__ = exc
    return error


_EVENT_TABLE = cast("Table", _EVENTS)


def _build_claim(dialect: str) -> Any:
    """The claim, built once per dialect: each call binds ``now``, ``limit``, ``locked_until``,
    ``token``.

    The due pending events and the events whose lease ran out are picked apart, each in its
    own index order up to ``limit`` rows, then merged: a single condition with ``OR`` has no
    index order, so the server read and sorted the whole backlog on every claim (8 ms for
    20,000 pending events, and more the further the worker fell behind). On PostgreSQL the
    chosen ids reach the UPDATE as one array, so it finds each row by its key: with ``IN``
    the planner may join them to a scan of the whole journal instead. The UPDATE names its
    rows by that key alone: the candidates' ``FOR UPDATE`` rechecked their condition on the
    rows it locked (SQLite runs the statement under its write lock), and with the condition
    repeated, a planner short of statistics (a backlog that grew since the last ANALYZE) read
    every pending event again through the status index and kept the chosen ones by filter:
    6 ms a claim of 64 in ``tests/bench/bench_worker.py``, 2 ms without.
    """
    columns = _EVENTS.c
    now = bindparam("now", type_=columns.next_attempt_at.type)
    limit = bindparam("limit", type_=Integer())
    pending_due = and_(columns.status == EventStatus.PENDING, columns.next_attempt_at <= now)
    lease_expired = and_(columns.status == EventStatus.PROCESSING, columns.locked_until < now)

    def candidates(condition: Any, name: str) -> Any:
        return (
            select(columns.id, columns.next_attempt_at, columns.created)
            .where(condition)
            .order_by(columns.next_attempt_at, columns.created)
            .limit(limit)
            .with_for_update(skip_locked=True)
            .cte(name)
        )

    merged = union_all(
        select(candidates(pending_due, "pending_due")),
        select(candidates(lease_expired, "lease_expired")),
    ).subquery("candidates")
    chosen = select(merged.c.id).order_by(merged.c.next_attempt_at, merged.c.created).limit(limit)
    if dialect == "postgresql":
        held = columns.id == any_(func.array(chosen.scalar_subquery()))
    else:
        held = columns.id.in_(chosen.scalar_subquery())
    return (
        update(_EVENT_TABLE)
        .where(held)
        .values(
            status=EventStatus.PROCESSING,
            attempts=columns.attempts + 1,
            locked_until=bindparam("locked_until", type_=columns.locked_until.type),
            claim_token=bindparam("token", type_=columns.claim_token.type),
        )
        .returning(columns.id, columns.type, columns.created, columns.payload, columns.attempts)
    )


_CLAIMS = {name: _build_claim(name) for name in ("postgresql", "sqlite")}
# The events of ``ids`` still held by the claim ``token`` (bound by :func:`_by_claim`).
_HELD = update(_EVENT_TABLE).where(
    _EVENTS.c.id.in_(bindparam("ids", expanding=True)),
    _EVENTS.c.claim_token == bindparam("token", type_=_EVENTS.c.claim_token.type),
)
_FINISH = _HELD.values(
    status=bindparam("status", type_=_EVENTS.c.status.type),
    processed_at=bindparam("now", type_=_EVENTS.c.processed_at.type),
    locked_until=None,
    claim_token=None,
).returning(_EVENTS.c.id)


async def claim_events(
    session: AsyncSession, *, limit: int, lease: timedelta, now: datetime | None = None
) -> list[ClaimedEvent]:
    """Take up to ``limit`` due events for this worker. Commits.

    PostgreSQL skips rows another replica is claiming (``FOR UPDATE SKIP LOCKED``); SQLite runs
    the whole UPDATE under its single write lock, so one statement is as safe there. The
    statement is prebuilt and runs on the session's connection: the ORM's execute path and a
    statement built per call cost more than the claim's own work.
    """
    now = now or utcnow()
    token = secrets.token_hex(16)
    connection = await session.connection()
    parameters = {"now": now, "limit": limit, "locked_until": now + lease, "token": token}
    claim = _CLAIMS[connection.dialect.name]
    rows = (await connection.execute(claim, parameters)).all()
    await session.commit()
    return [
        ClaimedEvent(
            id=row.id,
            type=row.type,
            created=row.created,
            payload=row.payload,
            attempts=row.attempts,
            claim_token=token,
        )
        for row in rows
    ]


async def finish_events(
    session: AsyncSession, events: list[ClaimedEvent], status: EventStatus
) -> set[str]:
    """Mark events done inside the transaction that applies them, so both commit or neither;
    one statement per claim. Returns the ids still held: the others' lease was lost to another
    worker, and the caller must not apply them."""
    now = utcnow()
    connection = await session.connection()
    held: set[str] = set()
    for claim in _by_claim(events):
        parameters = {**claim, "status": status, "now": now}
        held.update((await connection.execute(_FINISH, parameters)).scalars())
    return held


def _by_claim(events: list[ClaimedEvent]) -> list[dict[str, Any]]:
    """The parameters of ``_HELD`` for each claim among ``events``: its token and its ids."""
    return [
        {"ids": [event.id for event in events if event.claim_token == token], "token": token}
        for token in {event.claim_token for event in events}
    ]


_RELEASE = _HELD.values(
    status=EventStatus.PENDING,
    attempts=_EVENTS.c.attempts - 1,
    locked_until=None,
    claim_token=None,
)


async def release_events(connection: AsyncConnection, events: list[ClaimedEvent]) -> None:
    """Give back claimed events that were never applied (a worker stopping with events handed
    over to it): ``pending`` again, their attempt not counted, for any worker to take now
    rather than once their lease runs out. An event claimed anew since is left alone. The
    caller commits, unless ``connection`` is in autocommit."""
    for claim in _by_claim(events):
        await connection.execute(_RELEASE, claim)


async def finish_event_as(session: AsyncSession, event_id: str, status: EventStatus) -> None:
    """Correct the outcome of an event finished earlier in the same transaction."""
    await session.execute(
        update(WebhookEvent)
        .where(WebhookEvent.id == event_id)
        .values(status=status)
        .execution_options(synchronize_session=False)
    )


async def record_failure(
    session: AsyncSession, event: ClaimedEvent, error: str, *, retry_at: datetime | None
) -> None:
    """Keep the error on the event; back to ``pending`` until ``retry_at``, else ``failed``."""
    values: dict[str, Any] = {
        "last_error": error[:_MAX_ERROR_LENGTH],
        "locked_until": None,
        "claim_token": None,
    }
    if retry_at is None:
        values.update(status=EventStatus.FAILED, processed_at=utcnow())
    else:
        values.update(status=EventStatus.PENDING, next_attempt_at=retry_at)
    await session.execute(
        update(WebhookEvent)
        .where(WebhookEvent.id == event.id, WebhookEvent.claim_token == event.claim_token)
        .values(**values)
        .execution_options(synchronize_session=False)
    )
    await session.commit()


async def replay_event(session: AsyncSession, event_id: str) -> WebhookEvent | None:
    """Queue a stored event again with a fresh attempt budget. Commits.

    ``None`` when no such event exists or a worker holds it right now.
    """
    now = utcnow()
    busy = and_(WebhookEvent.status == EventStatus.PROCESSING, WebhookEvent.locked_until >= now)
    statement = (
        update(WebhookEvent)
        .where(WebhookEvent.id == event_id, ~busy)
        .values(
            status=EventStatus.PENDING,
            attempts=0,
            next_attempt_at=now,
            processed_at=None,
            locked_until=None,
            claim_token=None,
        )
        .returning(WebhookEvent)
        .execution_options(synchronize_session=False)
    )
    event = (await session.execute(statement)).scalar_one_or_none()
    await session.commit()
    return event


async def get_event(session: AsyncSession, event_id: str) -> WebhookEvent | None:
    return await session.get(WebhookEvent, event_id)


async def list_events(
    session: AsyncSession,
    *,
    status: EventStatus | None = None,
    type_: str | None = None,
    limit: int = 50,
) -> list[WebhookEvent]:
    """Newest received first."""
    query = select(WebhookEvent).order_by(WebhookEvent.received_at.desc(), WebhookEvent.id.desc())
    if status is not None:
        query = query.where(WebhookEvent.status == status)
    if type_ is not None:
        query = query.where(WebhookEvent.type == type_)
    return list((await session.scalars(query.limit(limit))).all())


_OLDEST_UNPROCESSED = select(func.min(WebhookEvent.received_at)).where(text(UNPROCESSED_EVENTS))


async def oldest_unprocessed_received_at(session: AsyncSession) -> datetime | None:
    """When the oldest event still waiting (pending or in progress) arrived: the first entry of
    the partial index on the backlog. Through the index on every event's ``received_at``, it
    walked the whole processed history first, once a second (migrations 0010 and 0011)."""
    value: datetime | None = (await session.execute(_OLDEST_UNPROCESSED)).scalar_one_or_none()
    if value is not None and value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value


# --- catch-up (issue 12): events listed from Stripe join the journal by the receiver's insert ---


async def record_listed_events(
    engine: AsyncEngine, events: list[tuple[EventEnvelope, str, bool, str | None]]
) -> set[str]:
    """Journal events read from Stripe's event list, as one multi-row insert with the receiver's
    dedupe by id; returns the ids that were new. An event given an error is stored ``failed``
    with it, so the worker never takes it and an operator sees why.

    Args:
        events: ``(envelope, payload, handled, error)``; ``error`` is ``None`` when well-formed.
    """
    if not events:
        return set()
    rows = []
    for envelope, payload, handled, error in events:
        row = _record_parameters(envelope, payload, handled=handled)
        row["last_error"] = None if error is None else error[:_MAX_ERROR_LENGTH]
        if error is not None:
            row.update(status=EventStatus.FAILED, processed_at=row["received_at"])
        rows.append(row)
    async with engine.connect() as connection:
        autocommit = await connection.execution_options(isolation_level="AUTOCOMMIT")
        statement = _RECORD_STATEMENTS[autocommit.dialect.name]
        result = await autocommit.execute(statement, rows)
        return {row.id for row in result}
