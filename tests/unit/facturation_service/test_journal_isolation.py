"""The journal's group commit: one row the database refuses fails only its own delivery."""

from __future__ import annotations

import asyncio

import pytest

from facturation_service.journal import EventEnvelope
from shared import Database
from tests.support.webhook_app import count_events
from tests.unit.facturation_service.conftest import NewWriter


def envelope(event_id: str, created: int = 1_700_000_000) -> EventEnvelope:
    # Built directly, as past the receiver's checks: the writer is the last line of defence.
    return EventEnvelope(id=event_id, type="customer.updated", created=created)


async def test_a_row_the_database_refuses_fails_alone_and_its_twenty_neighbours_are_stored(
    db: Database, new_writer: NewWriter
) -> None:
    writer = new_writer()
    good = [envelope(f"evt_good_{n}") for n in range(20)]
    bad = envelope("evt_bad", created=2**63)

    results = await asyncio.gather(
        *(writer.record(event, "{}", handled=False) for event in [*good[:10], bad, *good[10:]]),
        return_exceptions=True,
    )

    assert results[:10] == [True] * 10
    assert results[11:] == [True] * 10
    assert isinstance(results[10], Exception)
    assert await count_events(db) == 20
    assert await count_events(db, "evt_bad") == 0


async def test_a_duplicate_in_a_failed_batch_is_still_stored_once(
    db: Database, new_writer: NewWriter
) -> None:
    writer = new_writer()
    twice = envelope("evt_twice")

    results = await asyncio.gather(
        writer.record(twice, "{}", handled=False),
        writer.record(envelope("evt_bad", created=2**63), "{}", handled=False),
        writer.record(twice, "{}", handled=False),
        return_exceptions=True,
    )

    assert results[0] is True
    assert results[2] is False
    assert isinstance(results[1], Exception)
    assert await count_events(db, "evt_twice") == 1


@pytest.mark.parametrize("size", [1, 3])
async def test_when_every_row_fails_every_delivery_gets_the_error(
    db: Database, new_writer: NewWriter, size: int
) -> None:
    writer = new_writer()

    results = await asyncio.gather(
        *(
            writer.record(envelope(f"evt_bad_{n}", created=2**64), "{}", handled=False)
            for n in range(size)
        ),
        return_exceptions=True,
    )

    assert all(isinstance(result, Exception) for result in results)
    assert await count_events(db) == 0


async def test_an_id_longer_than_its_column_is_never_stored_cut_short(
    db: Database, new_writer: NewWriter
) -> None:
    """The decoder refuses such an id first (``Envelope.id``); this is the writer's own rule:
    PostgreSQL's batch (``unnest`` of ``text[]``) must not cast it to ``varchar(255)``, which
    would cut it silently. SQLite enforces no length: the id is stored whole there."""
    writer = new_writer()
    too_long = "evt_" + "x" * 300

    results = await asyncio.gather(
        writer.record(envelope(too_long), "{}", handled=False),
        writer.record(envelope("evt_fine"), "{}", handled=False),
        return_exceptions=True,
    )

    assert results[1] is True
    assert await count_events(db, "evt_fine") == 1
    assert await count_events(db, too_long[:255]) == 0
    if db.engine.dialect.name == "postgresql":
        assert isinstance(results[0], Exception)
        assert await count_events(db) == 1
    else:
        assert results[0] is True
        assert await count_events(db, too_long) == 1
