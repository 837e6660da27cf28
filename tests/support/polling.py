"""Waiting for what another process does (a webhook applied, a worker's pass) without sleeping a
fixed time."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any

__all__ = ["eventually"]


async def eventually(check: Callable[[], Awaitable[Any]], seconds: float = 20) -> Any:
    """Poll until ``check`` returns something truthy; its last answer."""
    deadline = time.monotonic() + seconds
    result = None
    while time.monotonic() < deadline:
        result = await check()
        if result:
            return result
        await asyncio.sleep(0.2)
    return result
