"""Background jobs that run every so often in each replica: catch-up, reconciliation, retention."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from collections.abc import AsyncIterator, Awaitable, Callable

__all__ = ["every"]

logger = logging.getLogger("facturation_service.periodic")


@contextlib.asynccontextmanager
async def every(
    period: float, name: str, job: Callable[[], Awaitable[object]]
) -> AsyncIterator[None]:
    """Run ``job`` every ``period`` seconds (jittered) while the context is open; 0 never runs it.

    A failing run is logged and the next one comes a period later: jobs keep their progress in the
    database, so a missed run only delays them.
    """
    if period <= 0:
        yield
        return

    async def loop() -> None:
        while True:
            # Jittered, so replicas started together do not all knock on a lease at once.
            await asyncio.sleep(period * random.uniform(0.9, 1.1))  # noqa: S311
            try:
                await job()
            except Exception as exc:
                logger.warning(
                    "periodic job failed; next run in one period",
                    extra={"job": name, "error": f"{type(exc).__name__}: {exc}"},
                )

    task = asyncio.create_task(loop(), name=name)
    try:
        yield
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
