"""The worker's claim reads as many journal rows as it takes, whatever the backlog: a claim that
sorted every pending event got slower the further the worker fell behind."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

from sqlalchemy import insert

from facturation_service import journal
from facturation_service.journal import EventStatus
from facturation_service.models import WebhookEvent, utcnow
from shared import Database

BACKLOG = 2000
STALE_BACKLOG = 20_000
LIMIT = 16


async def _journal_backlog(db: Database, count: int, *, processed: bool = False) -> None:
    """``count`` due events, oldest first; ``processed``: applied a day ago instead, the journal
    as autovacuum's ANALYZE usually finds it."""
    now = utcnow()
    at = now - timedelta(days=1) if processed else now
    rows = [
        {
            "id": f"evt_{'history' if processed else 'backlog'}_{index:05d}",
            "type": "invoice.paid",
            "api_version": None,
            "created": (1_600_000_000 if processed else 1_700_000_000) + index,
            "livemode": False,
            "payload": "{}",
            "received_at": at,
            "status": EventStatus.PROCESSED if processed else EventStatus.PENDING,
            "attempts": 1 if processed else 0,
            "next_attempt_at": at - timedelta(seconds=count - index),
            "processed_at": at if processed else None,
        }
        for index in range(count)
    ]
    async with db.sessionmaker() as session:
        await session.execute(insert(WebhookEvent), rows)
        await session.commit()


async def _plan(db: Database, *, analyze: bool, statistics: bool = True) -> Any:
    """The claim's plan, with its parameters bound; an analyzed claim is rolled back. Without
    ``statistics`` the journal is planned as it is between two runs of autovacuum's ANALYZE
    (a backlog that grew since, here from nothing)."""
    async with db.engine.connect() as connection:
        compiled = journal._CLAIMS[connection.dialect.name].compile(dialect=connection.dialect)
        now = utcnow()
        bound = compiled.construct_params(
            {"now": now, "limit": LIMIT, "locked_until": now + timedelta(seconds=30), "token": "t"}
        )
        parameters = tuple(bound[name] for name in compiled.positiontup or ())
        if statistics:
            await connection.exec_driver_sql("ANALYZE webhook_events")
        if connection.dialect.name == "postgresql":
            explain = "EXPLAIN (ANALYZE, FORMAT JSON) " if analyze else "EXPLAIN (FORMAT JSON) "
            result = await connection.exec_driver_sql(explain + str(compiled), parameters)
            plan = result.scalar_one()
            await connection.rollback()
            return json.loads(plan) if isinstance(plan, str) else plan
        result = await connection.exec_driver_sql("EXPLAIN QUERY PLAN " + str(compiled), parameters)
        return [str(step) for *_, step in result.all()]


def _nodes(node: dict[str, Any]) -> list[dict[str, Any]]:
    return [node, *(child for plan in node.get("Plans", []) for child in _nodes(plan))]


async def test_a_claim_reads_about_as_many_rows_as_it_takes_from_a_large_backlog(
    db: Database,
) -> None:
    await _journal_backlog(db, BACKLOG)

    if db.engine.dialect.name == "postgresql":
        (explained,) = await _plan(db, analyze=True)
        scans = [
            node
            for node in _nodes(explained["Plan"])
            if node.get("Relation Name") == WebhookEvent.__tablename__
            and node["Node Type"] != "ModifyTable"
        ]
        assert scans, explained
        # The candidate scans stop near the limit (an incremental sort reads rows in groups of
        # at least 32); the update finds each taken row by its key (an index or bitmap scan,
        # as the planner likes).
        assert all(node["Node Type"] != "Seq Scan" for node in scans), scans
        assert max(node["Actual Rows"] * node["Actual Loops"] for node in scans) <= 4 * LIMIT
        assert explained["Plan"]["Actual Rows"] == LIMIT
    else:
        steps = await _plan(db, analyze=False)
        # SQLite sorts in full only the merged candidates (at most twice the limit); on the
        # journal itself it sorts within equal next_attempt_at, from the index.
        full_sorts = [step for step in steps if step == "USE TEMP B-TREE FOR ORDER BY"]
        assert len(full_sorts) == 1, steps
        assert steps[steps.index(full_sorts[0]) - 1] == "SCAN candidates", steps
        assert not any(step.startswith("SCAN webhook_events") for step in steps), steps


async def test_a_claim_reads_the_rows_it_takes_when_the_statistics_saw_no_backlog(
    db: Database,
) -> None:
    """Statistics taken while every event was processed, then a burst: told that few events
    were pending, the planner read and sorted all of them on each claim (8 ms a claim of 64
    behind 20,000, the drain quadratic), through an index that held ``next_attempt_at`` but not
    the ``created`` after it in the claim's order, or through the backlog-age gauge's partial
    index when its predicate was the status (migration 0011)."""
    await _journal_backlog(db, BACKLOG, processed=True)
    async with db.engine.connect() as connection:
        await connection.exec_driver_sql("ANALYZE webhook_events")
        await connection.commit()
    await _journal_backlog(db, STALE_BACKLOG)

    if db.engine.dialect.name == "postgresql":
        (explained,) = await _plan(db, analyze=True, statistics=False)
        nodes = _nodes(explained["Plan"])
        scans = [
            node
            for node in nodes
            if node.get("Relation Name") == WebhookEvent.__tablename__
            and node["Node Type"] != "ModifyTable"
        ]
        assert max(node["Actual Rows"] * node["Actual Loops"] for node in scans) <= 4 * LIMIT
        sorts = [node for node in nodes if "Sort" in node["Node Type"]]
        assert all(node["Actual Rows"] <= 4 * LIMIT for node in sorts), sorts
        assert explained["Plan"]["Actual Rows"] == LIMIT
    else:
        steps = await _plan(db, analyze=False, statistics=False)
        full_sorts = [step for step in steps if step == "USE TEMP B-TREE FOR ORDER BY"]
        assert len(full_sorts) == 1, steps
        assert steps[steps.index(full_sorts[0]) - 1] == "SCAN candidates", steps
        assert not any(step.startswith("SCAN webhook_events") for step in steps), steps


async def test_a_claim_updates_the_rows_it_chose_found_by_their_key_even_unplanned(
    db: Database,
) -> None:
    """Planned with no statistics, the update once read every pending event again (a bitmap
    scan of the status index, the chosen ids as a filter: 6 ms a claim of 64 in the worker's
    benchmark): it now names its rows by their key alone."""
    await _journal_backlog(db, STALE_BACKLOG)

    if db.engine.dialect.name == "postgresql":
        (explained,) = await _plan(db, analyze=True, statistics=False)
        update = explained["Plan"]
        assert update["Node Type"] == "ModifyTable"
        (scan,) = [
            node
            for node in update["Plans"]
            if node.get("Parent Relationship") != "InitPlan" and node.get("Subplan Name") is None
        ]
        keys = [node for node in _nodes(scan) if node.get("Index Name") == "pk_webhook_events"]
        assert keys, scan
        assert scan.get("Rows Removed by Filter", 0) == 0, scan
        assert scan["Actual Rows"] == LIMIT
    else:
        steps = await _plan(db, analyze=False, statistics=False)
        assert steps[0].startswith("SEARCH webhook_events USING"), steps
        assert steps[0].endswith("INDEX sqlite_autoindex_webhook_events_1 (id=?)"), steps


async def test_claims_take_at_most_their_limit_oldest_first_expired_leases_among_them(
    db: Database,
) -> None:
    await _journal_backlog(db, 40)
    async with db.sessionmaker() as session:
        crashed = await journal.claim_events(session, limit=3, lease=timedelta(seconds=-1))
    async with db.sessionmaker() as session:
        first = await journal.claim_events(session, limit=5, lease=timedelta(seconds=30))
    async with db.sessionmaker() as session:
        second = await journal.claim_events(session, limit=5, lease=timedelta(seconds=30))

    # The old claim, ``id IN (... LIMIT n FOR UPDATE SKIP LOCKED)``, took all 40 here on
    # PostgreSQL: the planner ran the subquery again for each row, and each run skipped the rows
    # the statement had just updated and returned the next ones.
    def ids(claimed: list[journal.ClaimedEvent]) -> list[str]:
        return sorted(event.id for event in claimed)

    assert ids(crashed) == [f"evt_backlog_{index:05d}" for index in range(3)]
    # The expired leases are the oldest due events: taken again first, as a second attempt.
    assert ids(first) == [f"evt_backlog_{index:05d}" for index in range(5)]
    attempts = {event.id: event.attempts for event in first}
    assert [attempts[event_id] for event_id in ids(first)] == [2, 2, 2, 1, 1]
    assert ids(second) == [f"evt_backlog_{index:05d}" for index in range(5, 10)]
