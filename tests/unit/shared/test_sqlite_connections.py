"""What every SQLite connection of ``shared.Database`` is set up with, on a new file and on one
another connection is writing to."""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
from pathlib import Path

from shared import Database

PRAGMAS = {"journal_mode": "wal", "busy_timeout": 10000, "foreign_keys": 1, "synchronous": 1}


async def _pragmas(database: Database) -> dict[str, object]:
    async with database.engine.connect() as connection:
        return {
            name: (await connection.exec_driver_sql(f"PRAGMA {name}")).scalar_one()
            for name in PRAGMAS
        }


async def test_a_new_file_is_put_in_wal_mode_with_a_busy_timeout(tmp_path: Path) -> None:
    database = Database(f"sqlite:///{tmp_path}/new.db")
    try:
        assert await _pragmas(database) == PRAGMAS
    finally:
        await database.dispose()


async def test_a_connection_opened_while_another_writes_gets_the_same_settings(
    tmp_path: Path,
) -> None:
    url = f"sqlite:///{tmp_path}/busy.db"
    writer, reader = Database(url), Database(url)
    try:
        async with writer.engine.connect() as connection:
            await connection.exec_driver_sql("CREATE TABLE t (x INTEGER)")
            await connection.commit()
            await connection.exec_driver_sql("BEGIN IMMEDIATE")
            await connection.exec_driver_sql("INSERT INTO t VALUES (1)")
            # The writer holds its lock while a new connection opens and reads.
            assert await _pragmas(reader) == PRAGMAS
            await connection.rollback()
    finally:
        await writer.dispose()
        await reader.dispose()


def _rollback_journal_file(path: Path) -> None:
    """A file as a migration leaves it: in SQLite's default rollback-journal mode."""
    with contextlib.closing(sqlite3.connect(path)) as connection:
        connection.execute("CREATE TABLE t (x INTEGER)")
        connection.commit()
        assert connection.execute("PRAGMA journal_mode").fetchone() == ("delete",)


def _file_journal_mode(path: Path) -> str:
    with contextlib.closing(sqlite3.connect(path)) as connection:
        return str(connection.execute("PRAGMA journal_mode").fetchone()[0])


async def test_the_file_is_put_in_wal_before_the_engine_opens_a_connection(
    tmp_path: Path,
) -> None:
    path = tmp_path / "migrated.db"
    _rollback_journal_file(path)
    database = Database(f"sqlite:///{path}")
    try:
        assert _file_journal_mode(path) == "wal"
    finally:
        await database.dispose()


async def test_the_switch_to_wal_waits_for_a_writer_that_holds_the_file(tmp_path: Path) -> None:
    path = tmp_path / "held.db"
    _rollback_journal_file(path)
    writer = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    writer.execute("BEGIN EXCLUSIVE")
    opening = asyncio.create_task(asyncio.to_thread(Database, f"sqlite:///{path}"))
    await asyncio.sleep(0.2)
    assert not opening.done()
    writer.execute("COMMIT")
    writer.close()
    database = await opening
    try:
        assert _file_journal_mode(path) == "wal"
        assert await _pragmas(database) == PRAGMAS
    finally:
        await database.dispose()


async def test_engines_opening_one_new_file_at_once_all_connect(tmp_path: Path) -> None:
    """Two engines on one fresh file, each opening connections at once, as a test's own
    ``Database`` and the app under test do: every connection opens and the file is in WAL."""
    for attempt in range(20):
        path = tmp_path / f"shared-{attempt}.db"
        _rollback_journal_file(path)
        databases = await asyncio.gather(
            *(asyncio.to_thread(Database, f"sqlite:///{path}") for _ in range(4))
        )
        try:
            counts = await asyncio.gather(
                *(_count(database) for database in databases for _ in range(3))
            )
            assert counts == [0] * 12
            assert _file_journal_mode(path) == "wal"
        finally:
            for database in databases:
                await database.dispose()


async def _count(database: Database) -> int:
    async with database.engine.connect() as connection:
        return int((await connection.exec_driver_sql("SELECT count(*) FROM t")).scalar_one())
