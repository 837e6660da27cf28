"""What every SQLite connection of ``shared.Database`` is set up with, on a new file and on one
another connection is writing to."""

from __future__ import annotations

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
