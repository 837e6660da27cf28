"""Leases on periodic jobs: one replica at a time runs catch-up or reconciliation.

A lease is a row of ``scheduled_jobs`` taken by one conditional UPDATE (free, expired, or already
ours), so the database decides who holds it; a replica that dies lets it expire. Work done under
a lost lease is still safe (the journal dedupes, order moves are conditional): the lease only
saves the duplicate work.
"""

from __future__ import annotations

import secrets
from datetime import timedelta

from sqlalchemy import or_, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncEngine

from facturation_service.models import ScheduledJob, utcnow

__all__ = ["Lease", "ensure_job_row"]

_JOBS = ScheduledJob.__table__


async def ensure_job_row(engine: AsyncEngine, name: str) -> None:
    async with engine.begin() as connection:
        dialect = postgresql if connection.dialect.name == "postgresql" else sqlite
        await connection.execute(
            dialect.insert(_JOBS).values(name=name).on_conflict_do_nothing(index_elements=["name"])
        )


class Lease:
    """``async with Lease(...) as held:`` — ``held`` is ``False`` when another replica runs it."""

    def __init__(self, engine: AsyncEngine, name: str, *, seconds: float) -> None:
        self.engine = engine
        self.name = name
        self.duration = timedelta(seconds=seconds)
        self.owner = secrets.token_hex(16)

    async def take(self) -> bool:
        """Take or renew the lease; ``False`` when someone else holds it."""
        now = utcnow()
        async with self.engine.begin() as connection:
            result = await connection.execute(
                update(ScheduledJob)
                .where(
                    ScheduledJob.name == self.name,
                    or_(
                        ScheduledJob.lease_owner.is_(None),
                        ScheduledJob.lease_until < now,
                        ScheduledJob.lease_owner == self.owner,
                    ),
                )
                .values(lease_owner=self.owner, lease_until=now + self.duration)
            )
        return result.rowcount == 1

    async def release(self) -> None:
        async with self.engine.begin() as connection:
            await connection.execute(
                update(ScheduledJob)
                .where(ScheduledJob.name == self.name, ScheduledJob.lease_owner == self.owner)
                .values(lease_owner=None, lease_until=None)
            )

    async def __aenter__(self) -> bool:
        await ensure_job_row(self.engine, self.name)
        return await self.take()

    async def __aexit__(self, *_: object) -> None:
        await self.release()
