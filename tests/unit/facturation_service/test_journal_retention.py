"""Journal retention: only processed and ignored events past the retention age are pruned."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select, update

from facturation_service.models import WebhookEvent, utcnow
from facturation_service.retention import prune_journal
from facturation_service.settings import FacturationSettings
from shared import Database, SettingsError, load_settings
from tests.support import stripe_events
from tests.support.webhook_app import journal_event

STATUSES = ("pending", "processing", "processed", "ignored", "failed")


async def journal_aged(db: Database, status: str, *, age: timedelta) -> str:
    event = stripe_events.event("invoice.paid", stripe_events.invoice("paid"))
    await journal_event(db, event)
    then = utcnow() - age
    async with db.engine.begin() as connection:
        await connection.execute(
            update(WebhookEvent)
            .where(WebhookEvent.id == event["id"])
            .values(status=status, received_at=then, processed_at=then)
        )
    return str(event["id"])


async def remaining(db: Database) -> set[str]:
    async with db.sessionmaker() as session:
        return set((await session.scalars(select(WebhookEvent.id))).all())


async def test_old_processed_and_ignored_events_are_pruned_in_batches_and_nothing_else(
    db: Database,
) -> None:
    old = {status: await journal_aged(db, status, age=timedelta(days=91)) for status in STATUSES}
    more_old_processed = [
        await journal_aged(db, "processed", age=timedelta(days=120)) for _ in range(4)
    ]
    recent = {status: await journal_aged(db, status, age=timedelta(days=89)) for status in STATUSES}

    deleted = await prune_journal(db, older_than=timedelta(days=90), batch_size=2, pause=0)

    assert deleted == 6
    kept = await remaining(db)
    assert kept == {old["pending"], old["processing"], old["failed"], *recent.values()}
    assert not kept & set(more_old_processed)


async def test_pruning_an_empty_or_young_journal_deletes_nothing(db: Database) -> None:
    young = await journal_aged(db, "processed", age=timedelta(days=1))

    assert await prune_journal(db, older_than=timedelta(days=90)) == 0
    assert await remaining(db) == {young}


def test_a_retention_shorter_than_stripes_30_days_is_refused() -> None:
    environ = {
        "INTERNAL_TOKEN": "t",
        "STRIPE_API_BASE": "http://127.0.0.1:9",
        "FACTURATION_JOURNAL_RETENTION_DAYS": "7",
    }

    with pytest.raises(SettingsError, match="FACTURATION_JOURNAL_RETENTION_DAYS"):
        load_settings(FacturationSettings, environ)
