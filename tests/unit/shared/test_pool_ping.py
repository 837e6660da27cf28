"""The pool's liveness check on PostgreSQL: one round trip before the first statement of a
session whose connection sat unused for half a second or more, none when it was just used; a
connection a database restart closed is replaced, not handed to the session."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import asyncpg
import pytest
import pytest_asyncio
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

import shared._database
from shared import Database
from tests.support.databases import fresh_database, terminate_connections, using_postgres


@pytest_asyncio.fixture
async def database(tmp_path: Path) -> AsyncIterator[Database]:
    async with fresh_database("pool_ping", tmp_path) as url:
        database = Database(url)
        try:
            yield database
        finally:
            await database.dispose()


@pytest.fixture
def idle(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every pooled connection counts as idle long enough to be pinged."""
    monkeypatch.setattr(shared._database, "_PING_AFTER_IDLE", 0.0)


async def _select_one(database: Database) -> Any:
    async with database.sessionmaker() as session:
        return await session.scalar(text("SELECT 1"))


def _record_queries(monkeypatch: pytest.MonkeyPatch) -> tuple[list[str], list[object]]:
    """What asyncpg sends from now on: queries, and transactions started."""
    sent: list[str] = []
    connection_class = asyncpg.connection.Connection
    for name in ("execute", "fetchrow", "fetch", "fetchval"):
        real = getattr(connection_class, name)

        async def recorded(self: Any, query: str, *args: Any, _real: Any = real, **kw: Any) -> Any:
            sent.append(query)
            return await _real(self, query, *args, **kw)

        monkeypatch.setattr(connection_class, name, recorded)
    started: list[object] = []
    real_start = asyncpg.transaction.Transaction.start

    async def start(self: Any) -> None:
        started.append(self)
        await real_start(self)

    monkeypatch.setattr(asyncpg.transaction.Transaction, "start", start)
    return sent, started


@pytest.mark.usefixtures("idle")
async def test_a_session_after_a_restart_closed_the_idle_connections_gets_a_fresh_one(
    database: Database,
) -> None:
    assert await _select_one(database) == 1
    if using_postgres():
        assert await terminate_connections(database.url) >= 1

    assert await _select_one(database) == 1


@pytest.mark.usefixtures("idle")
async def test_checking_out_an_idle_connection_costs_one_simple_query(
    database: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert await _select_one(database) == 1  # the connection is pooled now
    sent, started = _record_queries(monkeypatch)

    async with database.engine.connect():
        pass

    if using_postgres():
        assert (sent, started) == (["SELECT 1"], [])
    else:
        assert (sent, started) == ([], [])  # SQLite: a file, nothing to ping


async def test_a_connection_handed_back_just_now_is_not_pinged(
    database: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert await _select_one(database) == 1
    sent, started = _record_queries(monkeypatch)

    async with database.engine.connect():
        pass

    assert (sent, started) == ([], [])


async def test_a_restart_within_the_unpinged_half_second_fails_one_statement_then_recovers(
    database: Database,
) -> None:
    """The price of not pinging a connection just used: the first statement on it fails (the
    server was restarting anyway), and every connection the pool held then is dropped."""
    assert await _select_one(database) == 1
    if not using_postgres():
        assert await _select_one(database) == 1  # SQLite: a file, no server to restart
        return
    assert await terminate_connections(database.url) >= 1

    with pytest.raises(DBAPIError) as failed:
        await _select_one(database)
    assert failed.value.connection_invalidated

    assert await _select_one(database) == 1
