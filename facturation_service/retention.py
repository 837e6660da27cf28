"""Journal retention: processed and ignored events are pruned once older than the retention age,
in small batches so that the receiver and the worker never wait long behind a delete. Pending,
processing and failed events are never pruned: they are work left or evidence to look at.

The retention age is at least 31 days, longer than Stripe keeps an event (30 days): an event
that Stripe could still redeliver or list for catch-up is always still in the journal, so its
dedupe by id holds.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from datetime import timedelta

from prometheus_client import Counter
from sqlalchemy import delete, select

from facturation_service.journal import EventStatus
from facturation_service.models import ReconciliationRun, WebhookEvent, utcnow
from facturation_service.periodic import every
from shared import Database

__all__ = ["EVENTS_PRUNED", "PRUNABLE", "JournalRetention", "prune_journal"]

logger = logging.getLogger("facturation_service.retention")

PRUNABLE = (EventStatus.PROCESSED, EventStatus.IGNORED)
EVENTS_PRUNED = Counter(
    "facturation_webhook_events_pruned_total",
    "Processed and ignored journal events deleted once past the retention age.",
)


async def prune_journal(
    database: Database, *, older_than: timedelta, batch_size: int = 500, pause: float = 0.05
) -> int:
    """Delete prunable events received and finished before ``now - older_than``, one batch per
    transaction; returns how many. Reconciliation reports as old go too."""
    cutoff = utcnow() - older_than
    total = 0
    while True:
        batch = (
            select(WebhookEvent.id)
            .where(
                WebhookEvent.status.in_(PRUNABLE),
                WebhookEvent.received_at < cutoff,
                WebhookEvent.processed_at < cutoff,
            )
            .limit(batch_size)
        )
        async with database.engine.begin() as connection:
            result = await connection.execute(
                delete(WebhookEvent)
                .where(WebhookEvent.id.in_(batch.scalar_subquery()))
                # The status is checked again by the DELETE itself: an event replayed since the
                # SELECT is pending now and stays.
                .where(WebhookEvent.status.in_(PRUNABLE))
            )
        deleted = result.rowcount or 0
        total += deleted
        if deleted < batch_size:
            break
        await asyncio.sleep(pause)
    async with database.engine.begin() as connection:
        await connection.execute(
            delete(ReconciliationRun).where(ReconciliationRun.finished_at < cutoff)
        )
    if total:
        EVENTS_PRUNED.inc(total)
        logger.info("journal pruned", extra={"deleted": total, "cutoff": cutoff.isoformat()})
    return total


class JournalRetention:
    """Prunes the journal every ``period`` seconds while :meth:`running` (0: never)."""

    def __init__(
        self, database: Database, *, days: float = 90.0, batch_size: int = 500, period: float = 0.0
    ) -> None:
        self.database = database
        self.older_than = timedelta(days=days)
        self.batch_size = batch_size
        self.period = period

    async def prune(self) -> int:
        return await prune_journal(
            self.database, older_than=self.older_than, batch_size=self.batch_size
        )

    def running(self) -> contextlib.AbstractAsyncContextManager[None]:
        return every(self.period, "journal-retention", self.prune)
