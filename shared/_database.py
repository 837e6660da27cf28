"""One async engine and session factory per service, from one ``DATABASE_URL``.

PostgreSQL goes through asyncpg with a pool; SQLite through aiosqlite with WAL and a busy timeout
so the dev stack tolerates a writer and readers at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import os
import sqlite3
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, TypeVar

import asyncpg
import msgspec
from litestar.datastructures import State
from sqlalchemy import JSON, MetaData, Table, event, insert, literal, select, text
from sqlalchemy.dialects import postgresql
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DisconnectionError, IntegrityError, SQLAlchemyError
from sqlalchemy.ext.asyncio import (
    AsyncConnection,
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)
from sqlalchemy.pool import QueuePool

__all__ = [
    "DATABASE_ERRORS",
    "Database",
    "async_database_url",
    "database_url",
    "insert_rows",
    "is_lost_connection",
    "is_sqlite",
    "named_metadata",
    "provide_db_session",
]

_SQLITE_BUSY_SECONDS = 10
T = TypeVar("T")


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


def is_lost_connection(exc: BaseException) -> bool:
    """The database is out of reach or the connection is gone (a restart, a network cut, the
    server shutting down), whichever layer says so: another attempt on a fresh connection may
    succeed, where one bad statement or row would fail again. (asyncpg's own ``DataError`` for
    a value it cannot send is an ``InterfaceError`` too: that is one row bad.)"""
    return (
        isinstance(exc, OSError | asyncpg.PostgresConnectionError | _OPERATOR_INTERVENTION)
        or (isinstance(exc, asyncpg.InterfaceError) and "connection is closed" in str(exc))
        or bool(getattr(exc, "connection_invalidated", False))
    )


_OPERATOR_INTERVENTION = asyncpg.exceptions.OperatorInterventionError  # shutdown, cancel

DATABASE_ERRORS = (SQLAlchemyError, OSError, asyncpg.PostgresError, asyncpg.InterfaceError)
"""What the database's failures are raised as, through SQLAlchemy or straight from asyncpg (a
timeout and a refused connection are ``OSError``): what a caller turns into a 503."""


async def _retried_once(attempt: Callable[[bool], Awaitable[T]]) -> T:
    """``attempt(False)``; when it lost its connection, ``attempt(True)`` on a fresh one."""
    try:
        return await attempt(False)
    except Exception as exc:
        if not is_lost_connection(exc):
            raise
    return await attempt(True)


@functools.cache
def _row_lookup(table: Table, column: str) -> str:
    """``row_exists``'s statement on PostgreSQL, built once per table and column."""
    name, key = _PG_QUOTE.format_table(table), _PG_QUOTE.quote(column)
    return f"SELECT 1 FROM {name} WHERE {key} = $1 LIMIT 1"  # noqa: S608 (no value in the text)


def _is_unique_violation(exc: Exception) -> bool:
    return isinstance(exc, asyncpg.UniqueViolationError | IntegrityError)


async def _autocommitted(_connection: asyncpg.Connection) -> None:
    """The one-statement pool's connections need no reset when handed back: each ran one
    statement in autocommit and changed nothing of the session (asyncpg's default reset is a
    round trip)."""


class _RowInsert:
    """``INSERT`` statements of given columns of ``table`` in asyncpg's form (names from the
    table's metadata, quoted as PostgreSQL quotes them), JSON columns encoded as SQLAlchemy's
    engines encode them: one row's (``statement``), and many rows' as one array per column,
    each typed as its column is (``many_statement``, a JSON column's array holding the
    documents' text). Built once per table and columns (:func:`_row_insert`)."""

    def __init__(self, table: Table, columns: tuple[str, ...]) -> None:
        self.columns = columns
        target = _PG_QUOTE.format_table(table)
        names = ", ".join(_PG_QUOTE.quote(column) for column in columns)
        places = ", ".join(f"${position}" for position in range(1, len(columns) + 1))
        self.statement = f"INSERT INTO {target} ({names}) VALUES ({places})"  # noqa: S608 (no value in the text)
        arrays = ", ".join(
            f"${position}::{table.c[column].type.compile(dialect=_PG_QUOTE.dialect)}[]"
            for position, column in enumerate(columns, 1)
        )
        self.many_statement = f"INSERT INTO {target} ({names}) SELECT * FROM unnest({arrays})"  # noqa: S608 (no value in the text)
        self._json = frozenset(name for name in columns if isinstance(table.c[name].type, JSON))

    def arguments(self, values: Mapping[str, Any]) -> list[Any]:
        return [
            _json_text(values[name]) if name in self._json else values[name]
            for name in self.columns
        ]

    def array_arguments(self, rows: Sequence[Mapping[str, Any]]) -> tuple[list[Any], ...]:
        return tuple(
            [_json_text(row[name]) for row in rows]
            if name in self._json
            else [row[name] for row in rows]
            for name in self.columns
        )


_row_insert = functools.cache(_RowInsert)


async def insert_rows(
    connection: AsyncConnection, table: Table, rows: Sequence[Mapping[str, Any]]
) -> None:
    """Rows of ``table`` with the same keys, in the caller's transaction, in one statement.

    On PostgreSQL the rows go as one array per column (``unnest``): an ``executemany`` runs
    the statement once per row, and SQLAlchemy's processing of each row's parameters cost
    more CPU than the server's work (an invoice's lines, two a snapshot, in the worker's
    batches of 64). SQLite takes them as an ``executemany``."""
    if not rows:
        return
    if connection.dialect.name != "postgresql":
        await connection.execute(insert(table), list(rows))
        return
    row_insert = _row_insert(table, tuple(rows[0]))
    # Through SQLAlchemy's cursor, which begins the caller's transaction if nothing did yet.
    await connection.exec_driver_sql(row_insert.many_statement, row_insert.array_arguments(rows))


_PG_QUOTE = postgresql.dialect().identifier_preparer  # type: ignore[no-untyped-call]


def _json_text(value: Any) -> str:
    """JSON columns are written by msgspec: the same document as ``json.dumps`` (compact, and
    valid where ``json.dumps`` would write ``NaN``), several times faster on a 6 kB snapshot."""
    return msgspec.json.encode(value).decode()


_PING_AFTER_IDLE = 0.5
"""Seconds a pooled connection may sit unused before a checkout pings it (HikariCP's
``aliveBypassWindowMs`` is the same 500 ms)."""


def _ping_on_checkout(dbapi_connection: Any, record: Any, _proxy: Any) -> None:
    """The pool's liveness check on PostgreSQL: ``SELECT 1`` as a simple query on asyncpg's
    connection, one round trip, when the connection has been unused for ``_PING_AFTER_IDLE``
    seconds or more. A connection that fails it (a database restart closed it) is dropped, and
    the pool checks out a fresh one (SQLAlchemy takes ``DisconnectionError`` from a checkout
    handler so).

    SQLAlchemy's own ``pool_pre_ping`` on asyncpg wraps a prepared ``;`` in BEGIN and ROLLBACK
    (for PgBouncer's transaction mode: a simple query prepares nothing, so it is as safe there)
    before every session's first statement: three round trips, and at a steady stream of
    webhooks a session of one event each. A connection handed back less than half a second ago
    is used without one: if the server closed it meanwhile, its first statement fails and
    SQLAlchemy drops every connection of the pool that was open then, as a ping would have
    found them (a restart is down longer than that anyway)."""
    used = record.info.get(_USED_AT)
    if used is not None and time.monotonic() - used < _PING_AFTER_IDLE:
        return
    try:
        dbapi_connection.run_async(_empty_query)
    except Exception as exc:
        raise DisconnectionError(f"pooled connection lost: {type(exc).__name__}") from exc


_USED_AT = "shared.used_at"


def _handed_back(_dbapi_connection: Any, record: Any) -> None:
    record.info[_USED_AT] = time.monotonic()


async def _empty_query(connection: asyncpg.Connection) -> None:
    await connection.execute("SELECT 1")


class Database:
    """The engine and session factory of one service."""

    ROW_POOL_SIZE = 10
    """Connections of the pool ``insert_row`` and ``row_exists`` share on PostgreSQL, at most."""

    def __init__(self, url: str, *, pool_size: int = 10, max_overflow: int = 10) -> None:
        _create_sqlite_folder(url)
        self.url = async_database_url(url)
        self._sqlite = is_sqlite(self.url)
        kwargs: dict[str, Any] = {}
        if self._sqlite:
            _put_sqlite_file_in_wal(self.url)
            kwargs = {"connect_args": {"timeout": _SQLITE_BUSY_SECONDS}}
        else:
            kwargs.update(pool_size=pool_size, max_overflow=max_overflow, pool_recycle=1800)
        kwargs["json_serializer"] = _json_text
        self.engine: AsyncEngine = create_async_engine(self.url, **kwargs)
        if self._sqlite:
            event.listen(self.engine.sync_engine, "connect", _sqlite_pragmas)
        else:
            event.listen(self.engine.sync_engine, "checkout", _ping_on_checkout)
            event.listen(self.engine.sync_engine, "checkin", _handed_back)
        self.sessionmaker = async_sessionmaker(self.engine, expire_on_commit=False)
        self._row_pool: asyncpg.Pool | None = None

    async def insert_row(self, table: Table, values: Mapping[str, Any]) -> None:
        """One row in one round trip, for a hot path whose work is that ``INSERT`` (the
        checkout's order): autocommit, no ping first. On PostgreSQL the statement goes straight
        to a small asyncpg pool of its own (``ROW_POOL_SIZE`` connections): through SQLAlchemy's
        pool, execution and result layers the same ``INSERT`` cost three times the CPU
        (docs/benchmarks.md). The main pool would also ping each checkout and wrap the
        statement in BEGIN/COMMIT: six round trips where one does.

        A pooled connection a database restart dropped fails its statement: it is retried once
        on a fresh one. If the first attempt had in fact been stored, the retry meets its own
        row and returns, so ``values`` must hold a key of the caller's own making (a new id).
        Any other error is raised as it came (asyncpg's on PostgreSQL, SQLAlchemy's on SQLite):
        a unique violation on the first attempt is a real conflict.
        """

        async def attempt(retry: bool) -> None:
            try:
                await self._insert_once(table, values)
            except Exception as exc:
                if not (retry and _is_unique_violation(exc)):
                    raise
                # The first attempt's row.

        await _retried_once(attempt)

    async def row_exists(self, table: Table, column: str, value: Any) -> bool:
        """Whether ``table`` has a row whose ``column`` is ``value``: one round trip on
        ``insert_row``'s pool, for a hot lookup (auth's revocation check on every token it
        verifies); a connection a database restart dropped is retried once. Errors are
        raised as ``insert_row`` raises them."""
        return await _retried_once(lambda _retry: self._exists_once(table, column, value))

    async def _insert_once(self, table: Table, values: Mapping[str, Any]) -> None:
        if self.is_sqlite:  # a file: no pool worth skipping
            async with self._autocommit() as connection:
                await connection.execute(insert(table), dict(values))
            return
        row_insert = _row_insert(table, tuple(values))
        pool = await self._rows()
        async with pool.acquire() as connection:
            await connection.execute(row_insert.statement, *row_insert.arguments(values))

    async def _exists_once(self, table: Table, column: str, value: Any) -> bool:
        if self.is_sqlite:
            query = select(literal(1)).select_from(table).where(table.c[column] == value)
            async with self._autocommit() as connection:
                return (await connection.scalar(query)) is not None
        statement = _row_lookup(table, column)
        pool = await self._rows()
        async with pool.acquire() as connection:
            return (await connection.fetchval(statement, value)) is not None

    @contextlib.asynccontextmanager
    async def _autocommit(self) -> AsyncIterator[AsyncConnection]:
        async with self.engine.connect() as connection:
            yield await connection.execution_options(isolation_level="AUTOCOMMIT")

    async def _rows(self) -> asyncpg.Pool:
        """The pool of ``insert_row`` and ``row_exists``, made on first use. It opens no
        connection yet (``min_size`` 0), so initialising it never suspends: no other task can
        find it half made."""
        if self._row_pool is None:
            _, connect_kwargs = self.engine.dialect.create_connect_args(make_url(self.url))
            self._row_pool = asyncpg.create_pool(
                min_size=0,
                max_size=self.ROW_POOL_SIZE,
                # Kept while idle, as SQLAlchemy's pools keep theirs (opened ahead at start).
                max_inactive_connection_lifetime=0,
                reset=_autocommitted,
                **connect_kwargs,
            )
            await self._row_pool
        return self._row_pool

    async def open_connections(self, count: int) -> int:
        """Opens ``count`` connections at once on each pool (the main one, the one-statement one
        of ``insert_row`` and ``row_exists``; at most each pool's size) and hands them back to
        the pool, which keeps them. Called at start-up, so the first burst finds them open
        instead of each of its requests connecting on its way (asyncpg's connect, then
        SQLAlchemy's set-up of the connection, its JSON codecs: 0.7 ms of CPU and 2 ms each,
        docs/benchmarks.md). Returns how many were opened on the main pool; SQLite opens none
        (a file, nothing to wait for). If one fails (or the caller's timeout cancels them),
        those already open are handed back.
        """
        pool = self.engine.sync_engine.pool
        if self.is_sqlite or count <= 0 or not isinstance(pool, QueuePool):
            return 0
        rows = await self._rows()
        count = min(count, pool.size())
        opened: list[AsyncConnection] = []
        acquired: list[asyncpg.pool.PoolConnectionProxy] = []

        async def connect() -> None:
            opened.append(await self.engine.connect())

        async def acquire() -> None:
            acquired.append(await rows.acquire())

        try:
            async with asyncio.TaskGroup() as group:
                for _ in range(count):
                    group.create_task(connect())
                for _ in range(min(count, self.ROW_POOL_SIZE)):
                    group.create_task(acquire())
        finally:
            for connection in opened:
                await connection.close()
            for row_connection in acquired:
                await rows.release(row_connection)
        return count

    @property
    def row_pool_connections(self) -> int:
        """The connections the one-statement pool holds open (none before its first use)."""
        return 0 if self._row_pool is None else self._row_pool.get_size()

    @property
    def is_sqlite(self) -> bool:
        return self._sqlite

    async def ping(self) -> None:
        async with self.engine.connect() as connection:
            await connection.execute(text("SELECT 1"))

    async def dispose(self) -> None:
        if self._row_pool is not None:
            await self._row_pool.close()
        await self.engine.dispose()


async def provide_db_session(state: State) -> AsyncIterator[AsyncSession]:
    """A request-scoped session; the handler commits what it means to keep."""
    database: Database = state.database
    async with database.sessionmaker() as session:
        yield session
