"""Alembic, run programmatically: each service keeps its own ``migrations/`` folder whose
``env.py`` calls :func:`run_alembic_env` with its metadata.

Alembic is imported by the functions that use it: about 10 MB of memory that a service which
serves without migrating (every replica but the one running ``migrate``) does not need."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import MetaData
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import create_async_engine

from shared._database import async_database_url

if TYPE_CHECKING:
    from alembic.config import Config

__all__ = ["alembic_config", "run_alembic_env", "upgrade_database"]


def alembic_config(migrations_dir: Path, database_url: str) -> Config:
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(migrations_dir))
    # ConfigParser interpolation would eat a '%' in a password.
    config.set_main_option("sqlalchemy.url", async_database_url(database_url).replace("%", "%%"))
    return config


def upgrade_database(migrations_dir: Path, database_url: str, revision: str = "head") -> None:
    """Bring the database to ``revision``. Blocking: call it from a thread inside an event loop."""
    from alembic import command

    command.upgrade(alembic_config(migrations_dir, database_url), revision)


def _run(connection: Connection, metadata: MetaData) -> None:
    from alembic import context

    context.configure(
        connection=connection,
        target_metadata=metadata,
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


async def _run_async(url: str, metadata: MetaData) -> None:
    engine = create_async_engine(url)
    try:
        async with engine.connect() as connection:
            await connection.run_sync(_run, metadata)
            await connection.commit()
    finally:
        await engine.dispose()


def run_alembic_env(metadata: MetaData) -> None:
    """The body of every service's ``migrations/env.py``."""
    from alembic import context

    url = context.config.get_main_option("sqlalchemy.url")
    if not url:
        raise RuntimeError("sqlalchemy.url is not set for the migration")
    if context.is_offline_mode():
        context.configure(url=url, target_metadata=metadata, literal_binds=True)
        with context.begin_transaction():
            context.run_migrations()
        return
    asyncio.run(_run_async(url, metadata))
