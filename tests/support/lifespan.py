"""A Litestar app's lifespan run on the caller's event loop, for apps mounted in-process."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from litestar import Litestar

__all__ = ["app_lifespan"]


@asynccontextmanager
async def app_lifespan(app: Litestar) -> AsyncIterator[Litestar]:
    """Starts ``app`` (its lifespan hooks) and stops it on exit. The lifespan is entered and left
    in one task of its own, as the app's task groups insist, even when a fixture's set-up and
    teardown run in two."""
    started, stop = asyncio.Event(), asyncio.Event()

    async def lifespan() -> None:
        async with app.lifespan():
            started.set()
            await stop.wait()

    task = asyncio.create_task(lifespan())
    waiter = asyncio.create_task(started.wait())
    await asyncio.wait([task, waiter], return_when="FIRST_COMPLETED")
    waiter.cancel()
    if task.done():
        task.result()
    try:
        yield app
    finally:
        stop.set()
        await task
