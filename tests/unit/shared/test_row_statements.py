"""``Database.insert_row`` and ``row_exists``: one statement in one round trip (straight to
asyncpg on PostgreSQL), the same row SQLAlchemy reads back, and a connection a database restart
dropped retried once."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import asyncpg
import pytest
from sqlalchemy import JSON, Column, DateTime, Integer, MetaData, String, Table, event, select
from sqlalchemy.exc import IntegrityError

from shared import Database, insert_rows, is_lost_connection
from tests.support.databases import fresh_database, terminate_connections, using_postgres

METADATA = MetaData()
ROWS = Table(
    "rows",
    METADATA,
    Column("id", String(64), primary_key=True),
    Column("amount", Integer, nullable=False),
    Column("note", String(32)),
    Column("lines", JSON),
    Column("created_at", DateTime(timezone=True)),
)
CREATED = datetime(2026, 12, 1, 20, 0, 0, 123456, tzinfo=UTC)


def _row(row_id: str) -> dict[str, Any]:
    lines = [{"product_id": "pro-month", "quantity": 1, "name": "Pro «mensuel»", "amount": 1200}]
    return {"id": row_id, "amount": 1200, "note": None, "lines": lines, "created_at": CREATED}


@pytest.fixture
async def database(tmp_path: Path) -> AsyncIterator[Database]:
    async with fresh_database("insert_row", tmp_path) as url:
        database = Database(url)
        try:
            async with database.engine.begin() as connection:
                await connection.run_sync(METADATA.create_all)
            yield database
        finally:
            await database.dispose()


async def _stored(database: Database) -> list[dict[str, Any]]:
    async with database.engine.connect() as connection:
        result = await connection.execute(select(ROWS).order_by(ROWS.c.id))
        rows = [dict(row._mapping) for row in result]
    if database.is_sqlite:  # SQLite keeps no zone: the models' UTCDateTime adds it back
        for row in rows:
            if row["created_at"] is not None:
                row["created_at"] = row["created_at"].replace(tzinfo=UTC)
    return rows


async def test_the_row_reads_back_as_written_json_and_time_included(database: Database) -> None:
    await database.insert_row(ROWS, _row("a"))
    await database.insert_row(ROWS, {"id": "b", "amount": 5})  # only the columns given

    stored = await _stored(database)

    assert stored[0] == _row("a")
    assert stored[1] == {"id": "b", "amount": 5, "note": None, "lines": None, "created_at": None}


async def test_a_key_already_taken_on_the_first_attempt_is_a_conflict(database: Database) -> None:
    await database.insert_row(ROWS, _row("a"))

    with pytest.raises((asyncpg.UniqueViolationError, IntegrityError)):
        await database.insert_row(ROWS, {**_row("a"), "amount": 1})

    assert [row["amount"] for row in await _stored(database)] == [1200]


async def test_a_row_stored_before_its_connection_was_lost_is_not_written_twice(
    database: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The answer lost with the connection: the retry meets its own row and returns."""
    insert_once = database._insert_once
    attempts: list[str] = []

    async def answer_lost(table: Table, values: Mapping[str, Any]) -> None:
        attempts.append(values["id"])
        await insert_once(table, values)
        if len(attempts) == 1:
            raise ConnectionResetError("the connection was lost before the answer")

    monkeypatch.setattr(database, "_insert_once", answer_lost)

    await database.insert_row(ROWS, _row("a"))

    assert attempts == ["a", "a"]
    assert await _stored(database) == [_row("a")]


async def test_a_connection_lost_twice_in_a_row_fails_the_insert(
    database: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    attempts = 0

    async def unreachable(table: Table, values: Mapping[str, Any]) -> None:
        nonlocal attempts
        attempts += 1
        raise ConnectionRefusedError("the database is down")

    monkeypatch.setattr(database, "_insert_once", unreachable)

    with pytest.raises(ConnectionRefusedError):
        await database.insert_row(ROWS, _row("a"))

    assert attempts == 2
    assert await _stored(database) == []


async def test_a_bad_row_is_not_retried(
    database: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    insert_once = database._insert_once
    attempts = 0

    async def counted(table: Table, values: Mapping[str, Any]) -> None:
        nonlocal attempts
        attempts += 1
        await insert_once(table, values)

    monkeypatch.setattr(database, "_insert_once", counted)

    with pytest.raises((asyncpg.NotNullViolationError, IntegrityError)) as raised:
        await database.insert_row(ROWS, {**_row("a"), "amount": None})

    assert not is_lost_connection(raised.value)
    assert attempts == 1
    assert await _stored(database) == []


async def test_a_pooled_connection_the_server_dropped_is_retried_on_a_fresh_one(
    database: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    """On PostgreSQL the server closes the pool's idle connection while this process cannot
    notice (its loop is blocked), as when a restart happens between two checkouts: the
    statement then fails on the dead connection and is written again on a fresh one. On
    SQLite there is no server: the insert simply works."""
    await database.insert_row(ROWS, _row("a"))
    failures: list[BaseException] = []
    insert_once = database._insert_once

    async def watched(table: Table, values: Mapping[str, Any]) -> None:
        try:
            await insert_once(table, values)
        except Exception as exc:
            failures.append(exc)
            raise

    monkeypatch.setattr(database, "_insert_once", watched)
    if using_postgres():
        assert database.row_pool_connections == 1
        _block_loop_while(terminate_connections(database.url))

    await database.insert_row(ROWS, _row("b"))

    # Read on a fresh connection: the main pool's, used just now, was closed too.
    await database.engine.dispose()
    assert [row["id"] for row in await _stored(database)] == ["a", "b"]
    if using_postgres():
        assert len(failures) == 1, failures
        assert is_lost_connection(failures[0])
    else:
        assert failures == []


def _block_loop_while(work: Any) -> None:
    """Run ``work`` to its end on a loop of its own while this thread's loop waits, so none of
    this loop's connections reads what the server sends meanwhile."""
    finished: list[int] = []
    thread = threading.Thread(target=lambda: finished.append(asyncio.run(work)))
    thread.start()
    thread.join()
    assert finished
    assert finished[0] >= 1


async def test_row_exists_finds_a_row_by_its_column(database: Database) -> None:
    await database.insert_row(ROWS, _row("a"))

    assert await database.row_exists(ROWS, "id", "a") is True
    assert await database.row_exists(ROWS, "id", "b") is False
    assert await database.row_exists(ROWS, "amount", 1200) is True


async def test_row_exists_retries_a_pooled_connection_the_server_dropped(
    database: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    """As for the insert: the lookup fails on the dead connection, then answers on a fresh
    one (auth's revocation check must neither 503 nor pass a revoked token after a restart)."""
    await database.insert_row(ROWS, _row("a"))
    failures: list[BaseException] = []
    exists_once = database._exists_once

    async def watched(table: Table, column: str, value: Any) -> bool:
        try:
            return await exists_once(table, column, value)
        except Exception as exc:
            failures.append(exc)
            raise

    monkeypatch.setattr(database, "_exists_once", watched)
    if using_postgres():
        _block_loop_while(terminate_connections(database.url))

    assert await database.row_exists(ROWS, "id", "a") is True

    if using_postgres():
        assert len(failures) == 1, failures
        assert is_lost_connection(failures[0])
    else:
        assert failures == []


async def test_insert_rows_writes_every_row_as_given_in_one_statement(
    database: Database,
) -> None:
    rows = [_row("a"), {**_row("b"), "note": "second", "lines": [], "created_at": None}]
    statements: list[tuple[str, bool]] = []

    def executed(*arguments: Any) -> None:
        _connection, _cursor, statement, _parameters, _context, many = arguments
        statements.append((statement, many))

    event.listen(database.engine.sync_engine, "before_cursor_execute", executed)
    try:
        async with database.engine.begin() as connection:
            await insert_rows(connection, ROWS, rows)
    finally:
        event.remove(database.engine.sync_engine, "before_cursor_execute", executed)

    assert await _stored(database) == rows
    ((statement, many),) = statements
    if using_postgres():  # one array per column: one execution for all the rows
        assert "unnest(" in statement
        assert not many


async def test_insert_rows_belong_to_the_callers_transaction(database: Database) -> None:
    async with database.engine.connect() as connection:
        transaction = await connection.begin()
        await insert_rows(connection, ROWS, [_row("a"), _row("b")])
        await transaction.rollback()

    assert await _stored(database) == []

    async with database.engine.begin() as connection:
        await insert_rows(connection, ROWS, [])  # nothing to write: no statement

    assert await _stored(database) == []
