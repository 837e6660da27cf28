"""The Stripe sandbox as a process beside a real stack, for end-to-end tests: its own webhook
delivery off until a test turns it on, and facturation pointed at it."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from tests.support.processes import ServiceProcess

__all__ = ["facturation_env", "sandbox_process"]


@asynccontextmanager
async def sandbox_process(folder: Path, webhook_secret: str) -> AsyncIterator[ServiceProcess]:
    process = ServiceProcess(
        "stripe_sandbox",
        {
            "SANDBOX_WEBHOOK_URL": "",
            "STRIPE_WEBHOOK_SECRET": webhook_secret,
            "SANDBOX_WEBHOOK_RETRY_BASE_MS": "100",
            "LOG_LEVEL": "WARNING",
        },
        folder,
    )
    await asyncio.to_thread(process.start)
    try:
        yield process
    finally:
        await asyncio.to_thread(process.stop)


def facturation_env(
    sandbox: ServiceProcess, secret_key: str, webhook_secret: str
) -> dict[str, str]:
    """Facturation's settings for talking to ``sandbox`` and taking its signed events."""
    return {
        "STRIPE_API_BASE": sandbox.url,
        "STRIPE_SECRET_KEY": secret_key,
        "STRIPE_WEBHOOK_SECRET": webhook_secret,
        "CHECKOUT_RETURN_ORIGINS": "http://localhost:8000",
        "FACTURATION_WEBHOOK_POLL_SECONDS": "0.2",
    }
