"""The backlog-age gauge's query (once a second, in the worker's housekeeping) reads the backlog,
not the journal's history: through the index on every event's ``received_at`` it walked all the
processed events before the first unprocessed one (27 ms for 40,000, and the journal keeps 90
days of them)."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

from sqlalchemy import insert

from facturation_service import journal
from facturation_service.journal import EventStatus
from facturation_service.models import WebhookEvent, utcnow
from shared import Database

HISTORY = 5000
BACKLOG = 3


async def _journal(db: Database) -> None:
    """``HISTORY`` processed events, then ``BACKLOG`` waiting ones, received in that order."""
    start = utcnow() - timedelta(hours=1)
    rows = [
        {
            "id": f"evt_age_{index:05d}",
            "type": "invoice.paid",
            "api_version": None,
            "created": 1_700_000_000 + index,
            "livemode": False,
            "payload": "{}",
            "received_at": start + timedelta(milliseconds=index),
            "status": EventStatus.PROCESSED if index < HISTORY else EventStatus.PENDING,
            "attempts": 1 if index < HISTORY else 0,
            "next_attempt_at": start,
            "processed_at": start if index < HISTORY else None,
        }
        for index in range(HISTORY + BACKLOG)
    ]
    async with db.sessionmaker() as session:
        await session.execute(insert(WebhookEvent), rows)
        await session.commit()
    async with db.engine.connect() as connection:
        await connection.exec_driver_sql("ANALYZE webhook_events")


def _nodes(node: dict[str, Any]) -> list[dict[str, Any]]:
    return [node, *(child for plan in node.get("Plans", []) for child in _nodes(plan))]


async def test_the_oldest_unprocessed_event_is_found_without_reading_the_history(
    db: Database,
) -> None:
    await _journal(db)
    async with db.sessionmaker() as session:
        oldest = await journal.oldest_unprocessed_received_at(session)
    assert oldest is not None
    first_waiting = utcnow() - timedelta(hours=1) + timedelta(milliseconds=HISTORY)
    assert abs((oldest - first_waiting).total_seconds()) < 60

    query = journal._OLDEST_UNPROCESSED
    async with db.engine.connect() as connection:
        compiled = str(query.compile(dialect=connection.dialect))
        if connection.dialect.name == "postgresql":
            result = await connection.exec_driver_sql("EXPLAIN (ANALYZE, FORMAT JSON) " + compiled)
            plan = result.scalar_one()
            (explained,) = json.loads(plan) if isinstance(plan, str) else plan
            scans = [node for node in _nodes(explained["Plan"]) if "Scan" in node["Node Type"]]
            assert [node.get("Index Name") for node in scans] == [
                "ix_webhook_events_unfinished_received_at"
            ]
            assert sum(node.get("Rows Removed by Filter", 0) for node in scans) == 0
            assert sum(node["Actual Rows"] for node in scans) <= BACKLOG
        else:
            result = await connection.exec_driver_sql("EXPLAIN QUERY PLAN " + compiled)
            steps = " ".join(str(step) for *_, step in result.all())
            assert "ix_webhook_events_unfinished_received_at" in steps
