"""Looking into a database from a migration test: run a synchronous inspector probe on it, and
the probes the migration tests share (tables, a table's columns, differences from the models)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import MetaData, inspect
from sqlalchemy.engine import Connection

from shared import Database

T = TypeVar("T")


async def inspect_database(url: str, probe: Callable[[Connection], T]) -> T:
    """Run ``probe`` on a connection of its own to ``url``; the engine is closed afterwards."""
    database = Database(url)
    try:
        async with database.engine.connect() as connection:
            return await connection.run_sync(probe)
    finally:
        await database.dispose()


def tables(connection: Connection) -> set[str]:
    return set(inspect(connection).get_table_names())


def columns_of(table: str) -> Callable[[Connection], set[str]]:
    def probe(connection: Connection) -> set[str]:
        return {column["name"] for column in inspect(connection).get_columns(table)}

    return probe


def differences_from(metadata: MetaData) -> Callable[[Connection], list[Any]]:
    """What ``alembic`` autogenerate would change to make the schema match ``metadata``."""

    def probe(connection: Connection) -> list[Any]:
        return list(compare_metadata(MigrationContext.configure(connection), metadata))

    return probe
