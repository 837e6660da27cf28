"""The in-process Stripe sandbox for the catch-up and reconciliation tests: events can be planted
in its state as if Stripe made them and never delivered their webhook, and Stripe failing is a
scripted fault (``fail``)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from facturation_service.stripe_api import StripeApi
from stripe_sandbox import SandboxSettings
from stripe_sandbox.state import Delivery
from tests.support import stripe_events
from tests.support.sandbox import SANDBOX_KEY, InProcessSandbox

ALL_CALLS = 1_000_000
"""A fault ``count`` no test exhausts: Stripe stays down until ``restore``."""


class Sandbox(InProcessSandbox):
    def plant(self, event: dict[str, Any]) -> dict[str, Any]:
        """An event Stripe made whose webhook never arrived."""
        self.state.events[event["id"]] = event
        self.state.deliveries[event["id"]] = Delivery(status="failed", attempts=3)
        return event

    def fail(self, method: str = "*", path: str = "/v1/*") -> None:
        """Every matching call answers Stripe's 500 ``api_error`` until :meth:`restore`."""
        self.faults.add(method, path, "api_error", count=ALL_CALLS)

    def restore(self) -> None:
        self.faults.clear()

    def stripe_api(
        self,
        secret_key: str = SANDBOX_KEY,
        *,
        timeout_seconds: float = 10.0,
        max_network_retries: int = 0,
    ) -> StripeApi:
        return super().stripe_api(
            secret_key, timeout_seconds=timeout_seconds, max_network_retries=max_network_retries
        )


@asynccontextmanager
async def running_sandbox() -> AsyncIterator[Sandbox]:
    sandbox = Sandbox(
        SandboxSettings(
            stripe_webhook_secret=[stripe_events.WEBHOOK_SECRET], sandbox_webhook_url=""
        )
    )
    async with sandbox.running():
        yield sandbox
