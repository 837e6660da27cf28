"""Catch-up (flow 9): events whose webhook never came are read from Stripe's event list and put
in the same journal, so the same worker applies them, once.

A pass lists, for each group of at most 20 handled event types, Stripe's events created since the
group's cursor minus a safety overlap, newest first, page by page. Each page goes into the journal
by the receiver's own insert (dedupe by event id): an event a webhook already delivered is not
recorded again, and one delivered later is acknowledged as a duplicate. After each page the pass
saves where it is, so a pass cut short (Stripe down, rate limited, the process killed) resumes
there; the cursor moves only once a pass has listed everything. One replica at a time runs it
(a lease); Stripe keeps events 30 days, so a cursor older than 27 is reported as an error.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import time
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from typing import Any

import msgspec
from prometheus_client import Counter, Gauge
from sqlalchemy import select, update

from facturation_service import journal
from facturation_service.journal import EventEnvelope
from facturation_service.leases import Lease, ensure_job_row
from facturation_service.models import ScheduledJob, utcnow
from facturation_service.periodic import every
from facturation_service.stripe_api import StripeApi
from shared import ClientError, ConflictError, Database, ProblemError

__all__ = [
    "CATCHUP_ERRORS",
    "EVENTS_RECOVERED",
    "LAST_SUCCESS",
    "CatchUp",
    "CatchUpResult",
    "type_groups",
]

logger = logging.getLogger("facturation_service.catchup")

LEASE_NAME = "catch-up"
MAX_TYPES_PER_REQUEST = 20
"""Stripe's limit on ``types`` in one ``GET /v1/events``."""
HORIZON_WARNING_SECONDS = 27 * 86_400
"""Stripe keeps events 30 days: a cursor older than this is about to lose events for good."""

EVENTS_RECOVERED = Counter(
    "facturation_catchup_events_recovered_total",
    "Events catch-up found in Stripe's list that the journal did not have yet.",
)
LAST_SUCCESS = Gauge(
    "facturation_catchup_last_success_timestamp_seconds",
    "Unix time of the last catch-up pass that listed everything (0: none yet in this process).",
)
CATCHUP_ERRORS = Counter(
    "facturation_catchup_errors_total",
    "Catch-up problems, by reason: stripe (a pass stopped), cursor_near_horizon, malformed_event.",
    ["reason"],
)


class CatchUpResult(msgspec.Struct):
    fetched: int
    """Events Stripe listed in this pass (the overlap lists some again)."""
    recorded: int
    """Of those, the ones the journal did not hold yet: missed deliveries, now recovered."""


@dataclass(frozen=True)
class TypeGroup:
    name: str
    types: list[str]


def type_groups(types: Iterable[str]) -> list[TypeGroup]:
    """The handled types in groups Stripe accepts in one request, each named by its content so
    that a change of handled types starts new cursors instead of misusing old ones."""
    ordered = sorted(set(types))
    groups = []
    for start in range(0, len(ordered), MAX_TYPES_PER_REQUEST):
        chunk = ordered[start : start + MAX_TYPES_PER_REQUEST]
        digest = hashlib.sha256(",".join(chunk).encode()).hexdigest()[:16]
        groups.append(TypeGroup(name=f"catch-up:{digest}", types=chunk))
    return groups


def _journal_entry(
    event: dict[str, Any], handled_types: frozenset[str]
) -> tuple[EventEnvelope, str, bool, str | None] | None:
    """The journal row of a listed event; a malformed one becomes a ``failed`` row carrying its
    error. ``None`` when it has not even an id to be stored under."""
    payload = json.dumps(event, indent=2)
    event_id = event.get("id")
    if not isinstance(event_id, str) or not 0 < len(event_id) <= 255:
        CATCHUP_ERRORS.labels(reason="malformed_event").inc()
        logger.error("listed event without a usable id skipped", extra={"event_id": event_id})
        return None
    error: str | None = None
    try:
        envelope = msgspec.convert(event, EventEnvelope)
        data = event.get("data")
        if not isinstance(data, dict) or not isinstance(data.get("object"), dict):
            error = "listed event has no data.object"
    except msgspec.ValidationError as exc:
        error = f"listed event is malformed: {exc}"
        event_type, created = event.get("type"), event.get("created")
        envelope = EventEnvelope(
            id=event_id,
            type=(event_type if isinstance(event_type, str) and event_type else "unknown")[:128],
            created=created if isinstance(created, int) else 0,
        )
    if error is not None:
        CATCHUP_ERRORS.labels(reason="malformed_event").inc()
        logger.error("malformed listed event journaled as failed", extra={"event_id": event_id})
    return envelope, payload, envelope.type in handled_types, error


class CatchUp:
    def __init__(
        self,
        database: Database,
        stripe_api: StripeApi,
        *,
        handled_types: Iterable[str],
        overlap_seconds: int = 600,
        initial_lookback_seconds: int = 259_200,
        page_size: int = 100,
        lease_seconds: float = 120.0,
        period: float = 0.0,
        on_recorded: Callable[[], None] | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        """Catch-up over the ``handled_types`` (the worker's dispatch table).

        Args:
            period: seconds between two passes while :meth:`running`; 0: on demand only.
            on_recorded: called after a pass recorded new events (the worker's ``notify``).
        """
        self.database = database
        self.stripe = stripe_api
        self.handled_types = frozenset(handled_types)
        self.groups = type_groups(self.handled_types)
        self.overlap = overlap_seconds
        self.initial_lookback = initial_lookback_seconds
        self.page_size = page_size
        self.lease_seconds = lease_seconds
        self.period = period
        self.on_recorded = on_recorded
        self.clock = clock

    async def run_pass(self) -> CatchUpResult:
        """One pass over every type group, under the lease.

        Raises:
            ConflictError: another replica is running a pass right now.
            ProblemError: Stripe failed; what was recorded stays, the next pass resumes there.
        """
        lease = Lease(self.database.engine, LEASE_NAME, seconds=self.lease_seconds)
        async with lease as held:
            if not held:
                raise ConflictError("A catch-up pass is already running on another replica.")
            return await self.run_pass_unlocked(renew=lease.take)

    def running(self) -> contextlib.AbstractAsyncContextManager[None]:
        """A pass every ``period`` for as long as the block runs (the app's lifespan). Catch-up
        only journals, so it runs in every billing mode: while ``off`` it keeps what Stripe could
        not deliver."""
        return every(self.period, "catch-up", self.scheduled_pass)

    async def scheduled_pass(self) -> None:
        """The periodic pass: another replica running it is not a failure."""
        with contextlib.suppress(ConflictError):
            await self.run_pass()

    async def run_pass_unlocked(
        self, renew: Callable[[], Awaitable[bool]] | None = None
    ) -> CatchUpResult:
        """The pass itself; safe without the lease too (the journal dedupes), only slower."""
        total = CatchUpResult(fetched=0, recorded=0)
        try:
            for group in self.groups:
                fetched, recorded = await self._catch_up_group(group, renew)
                total.fetched += fetched
                total.recorded += recorded
        except ProblemError as exc:
            if not isinstance(exc, ConflictError):  # a lost lease is not Stripe's doing
                CATCHUP_ERRORS.labels(reason="stripe").inc()
            raise
        finally:
            if total.recorded:
                EVENTS_RECOVERED.inc(total.recorded)
                if self.on_recorded is not None:
                    self.on_recorded()
        LAST_SUCCESS.set(self.clock())
        logger.info(
            "catch-up pass done", extra={"fetched": total.fetched, "recorded": total.recorded}
        )
        return total

    async def _catch_up_group(
        self, group: TypeGroup, renew: Callable[[], Awaitable[bool]] | None
    ) -> tuple[int, int]:
        engine = self.database.engine
        await ensure_job_row(engine, group.name)
        async with engine.connect() as connection:
            row = (
                await connection.execute(
                    select(
                        ScheduledJob.cursor, ScheduledJob.resume_after, ScheduledJob.resume_upper
                    ).where(ScheduledJob.name == group.name)
                )
            ).one()
        now = int(self.clock())
        cursor = row.cursor if row.cursor is not None else now - self.initial_lookback
        if now - cursor > HORIZON_WARNING_SECONDS:
            CATCHUP_ERRORS.labels(reason="cursor_near_horizon").inc()
            logger.error(
                "catch-up cursor is close to Stripe's 30-day horizon: older events are lost",
                extra={"cursor": cursor, "age_days": round((now - cursor) / 86_400, 1)},
            )
        starting_after: str | None = row.resume_after
        resuming = starting_after is not None
        # The cursor this pass ends with: when it (or the pass it resumes) started, or the newest
        # event it saw if Stripe's clock is ahead of ours.
        upper: int = (row.resume_upper or now) if resuming else now
        fetched = recorded = 0
        while True:
            try:
                page = await self.stripe.list_events(
                    types=group.types,
                    created_gte=max(0, cursor - self.overlap),
                    starting_after=starting_after,
                    limit=self.page_size,
                )
            except ClientError:
                if not resuming:
                    raise
                # The event to resume after is gone from Stripe: list the whole window again.
                logger.warning("catch-up resume point unknown to Stripe; starting over")
                starting_after, resuming = None, False
                continue
            resuming = False
            events = [event.to_dict(recursive=True, for_json=True) for event in page.data]
            entries = [
                entry
                for entry in (_journal_entry(event, self.handled_types) for event in events)
                if entry is not None
            ]
            recorded += len(await journal.record_listed_events(engine, entries))
            fetched += len(events)
            created = [
                event["created"] for event in events if isinstance(event.get("created"), int)
            ]
            upper = max([upper, *created])
            # Stripe pages after an id; one without a usable id cannot be a cursor.
            last_id = next(
                (e["id"] for e in reversed(events) if isinstance(e.get("id"), str)), None
            )
            if last_id is None or not page.has_more:
                break
            starting_after = last_id
            await self._save(group.name, resume_after=starting_after, resume_upper=upper)
            if renew is not None and not await renew():
                raise ConflictError("The catch-up lease was lost to another replica.")
        await self._save(
            group.name,
            cursor=max(cursor, upper),
            resume_after=None,
            resume_upper=None,
            last_success_at=utcnow(),
        )
        return fetched, recorded

    async def _save(self, name: str, **values: Any) -> None:
        async with self.database.engine.begin() as connection:
            await connection.execute(
                update(ScheduledJob).where(ScheduledJob.name == name).values(**values)
            )
