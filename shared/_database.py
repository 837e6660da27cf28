"""One async engine and session factory per service, from one ``DATABASE_URL``.

PostgreSQL goes through asyncpg with a pool; SQLite through aiosqlite with WAL and a busy timeout
so the dev stack tolerates a writer and readers at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import sqlite3
import time
from collections.abc import AsyncIterator, Mapping
from pathlib import Path
from typing import Any

import msgspec
from litestar.datastructures import State
from sqlalchemy import MetaData, event, text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)
from sqlalchemy.pool import QueuePool

__all__ = [
    "Database",
    "async_database_url",
    "database_url",
    "is_sqlite",
    "named_metadata",
    "provide_db_session",
]

_SQLITE_BUSY_SECONDS = 10


def async_database_url(url: str) -> str:
    """Pick the async driver for a plain URL (``postgresql://``, ``sqlite:///``)."""
    parsed = make_url(url)
    driver = parsed.drivername
    if driver in ("postgresql", "postgres", "postgresql+psycopg2", "postgresql+psycopg"):
        parsed = parsed.set(drivername="postgresql+asyncpg")
    elif driver == "sqlite":
        parsed = parsed.set(drivername="sqlite+aiosqlite")
    return parsed.render_as_string(hide_password=False)


def named_metadata() -> MetaData:
    """Metadata whose constraints and indexes get predictable names, so each service's
    hand-written migrations and its models agree on every name."""
    return MetaData(
        naming_convention={
            "ix": "ix_%(table_name)s_%(column_0_name)s",
            "uq": "uq_%(table_name)s_%(column_0_name)s",
            "ck": "ck_%(table_name)s_%(constraint_name)s",
            "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
            "pk": "pk_%(table_name)s",
        }
    )


def is_sqlite(url: str) -> bool:
    return make_url(url).get_backend_name() == "sqlite"


def _sqlite_file(url: str) -> Path | None:
    """The file of a SQLite URL; None for another database, ``:memory:`` or a ``file:`` URI."""
    if not is_sqlite(url):
        return None
    path = make_url(url).database
    if not path or path == ":memory:" or path.startswith("file:"):
        return None
    return Path(path)


def _create_sqlite_folder(url: str) -> None:
    """SQLite creates its file but not the file's folder (``unable to open database file``)."""
    path = _sqlite_file(url)
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)


def database_url(variable: str, default: str, environ: Mapping[str, str] | None = None) -> str:
    """A service's database URL, from ``variable`` (``default`` when unset or empty), ready to
    open: for a SQLite file its folder now exists, relative to the working directory.

    Both services read their URL through it for ``migrate``, and ``Database`` creates the folder
    the same way when a service starts, so neither needs its folder made beforehand.
    """
    environ = os.environ if environ is None else environ
    url = environ.get(variable) or default
    _create_sqlite_folder(url)
    return url


def _put_sqlite_file_in_wal(url: str) -> None:
    """WAL is kept in the file: put it there once, before the engine opens any connection.

    Switching takes an exclusive lock, and SQLite refuses a switch that loses a race at once
    ("database is locked") rather than waiting out the busy timeout. Switching on each new
    connection let two engines opening the same new file at once fail that way (1 test in
    2,000 of a ``make test`` run), so the switch is done here, waiting for a lock a migration
    or another process may hold, and the connections only read what the file says.
    """
    path = _sqlite_file(url)
    if path is None:
        return
    deadline = time.monotonic() + _SQLITE_BUSY_SECONDS
    with contextlib.closing(sqlite3.connect(path, timeout=_SQLITE_BUSY_SECONDS)) as connection:
        while True:
            try:
                if _journal_mode(connection) == "wal":
                    return
                connection.execute("PRAGMA journal_mode=WAL")
            except sqlite3.OperationalError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.01)


def _journal_mode(connection: sqlite3.Connection) -> str:
    (mode,) = connection.execute("PRAGMA journal_mode").fetchone()
    return str(mode).lower()


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    """Every new SQLite connection's settings. Its busy timeout, to wait for a lock another
    connection holds, is the driver's ``timeout`` (``connect_args``); WAL is already in the file
    (``_put_sqlite_file_in_wal``)."""
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()


def _json_text(value: Any) -> str:
    """JSON columns are written by msgspec: the same document as ``json.dumps`` (compact, and
    valid where ``json.dumps`` would write ``NaN``), several times faster on a 6 kB snapshot."""
    return msgspec.json.encode(value).decode()


class Database:
    """The engine and session factory of one service."""

    def __init__(self, url: str, *, pool_size: int = 10, max_overflow: int = 10) -> None:
        _create_sqlite_folder(url)
        self.url = async_database_url(url)
        kwargs: dict[str, Any] = {"pool_pre_ping": True}
        if is_sqlite(self.url):
            _put_sqlite_file_in_wal(self.url)
            kwargs = {"connect_args": {"timeout": _SQLITE_BUSY_SECONDS}}
        else:
            kwargs.update(pool_size=pool_size, max_overflow=max_overflow, pool_recycle=1800)
        kwargs["json_serializer"] = _json_text
        self.engine: AsyncEngine = create_async_engine(self.url, **kwargs)
        if is_sqlite(self.url):
            event.listen(self.engine.sync_engine, "connect", _sqlite_pragmas)
        self.sessionmaker = async_sessionmaker(self.engine, expire_on_commit=False)
        self._single_statement: AsyncEngine | None = None

    def single_statement_engine(self, *, pool_size: int = 10) -> AsyncEngine:
        """An engine for a hot path whose work is one statement: autocommit and no pre-ping, so
        the statement is one round trip. (The main pool pings each checkout, on asyncpg with
        BEGIN, ping, ROLLBACK, and wraps the statement in BEGIN/COMMIT: six where one does.)

        Without the ping, a connection dropped by a database restart fails its statement
        with ``DBAPIError.connection_invalidated`` set: the caller retries once. Built once
        (later calls return it), disposed with the database. SQLite has no such cost and keeps
        its one engine (and its pragmas).
        """
        if self._single_statement is None:
            if self.is_sqlite:
                self._single_statement = self.engine.execution_options(isolation_level="AUTOCOMMIT")
            else:
                self._single_statement = create_async_engine(
                    self.url,
                    isolation_level="AUTOCOMMIT",
                    pool_size=pool_size,
                    max_overflow=0,
                    pool_recycle=1800,
                    json_serializer=_json_text,
                )
        return self._single_statement

    async def open_connections(self, engine: AsyncEngine, count: int) -> int:
        """Opens ``count`` of ``engine``'s connections at once (at most its pool's size) and
        hands them back to the pool, which keeps them: what asyncpg's own pool does with
        ``min_size``. Called at start-up, so the first burst finds them open instead of each
        of its requests connecting on its way (asyncpg's connect, then SQLAlchemy's set-up of
        the connection, its JSON codecs: 0.7 ms of CPU and 2 ms each, docs/benchmarks.md).
        Returns how many were opened; SQLite opens none (a file, nothing to wait for). If one
        fails (or the caller's timeout cancels them), those already open are handed back.
        """
        pool = engine.sync_engine.pool
        if self.is_sqlite or count <= 0 or not isinstance(pool, QueuePool):
            return 0
        count = min(count, pool.size())
        opened: list[Any] = []

        async def connect() -> None:
            opened.append(await engine.connect())

        try:
            async with asyncio.TaskGroup() as group:
                for _ in range(count):
                    group.create_task(connect())
        finally:
            for connection in opened:
                await connection.close()
        return count

    @property
    def is_sqlite(self) -> bool:
        return is_sqlite(self.url)

    async def ping(self) -> None:
        async with self.engine.connect() as connection:
            await connection.execute(text("SELECT 1"))

    async def dispose(self) -> None:
        if self._single_statement is not None and not self.is_sqlite:
            await self._single_statement.dispose()
        await self.engine.dispose()


async def provide_db_session(state: State) -> AsyncIterator[AsyncSession]:
    """A request-scoped session; the handler commits what it means to keep."""
    database: Database = state.database
    async with database.sessionmaker() as session:
        yield session
