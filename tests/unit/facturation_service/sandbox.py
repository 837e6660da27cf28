"""The Stripe sandbox served in-process on a loopback port, for facturation tests that need
Stripe's event list or real Checkout Sessions; events can be planted in its state directly."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

from litestar import Litestar

from facturation_service.stripe_api import StripeApi
from stripe_sandbox import SandboxSettings, create_app
from stripe_sandbox.state import Delivery, SandboxState
from tests.support import stripe_events
from tests.unit.stripe_sandbox.conftest import serving

SANDBOX_KEY = "sk_test_unit_catch_up"


@dataclass
class Sandbox:
    url: str
    app: Litestar

    @property
    def state(self) -> SandboxState:
        state: SandboxState = self.app.state.sandbox
        return state

    def plant(self, event: dict[str, Any]) -> dict[str, Any]:
        """An event Stripe made whose webhook never arrived."""
        self.state.events[event["id"]] = event
        self.state.deliveries[event["id"]] = Delivery(status="failed", attempts=3)
        return event

    def stripe_api(self, **options: Any) -> StripeApi:
        return StripeApi(SANDBOX_KEY, api_base=self.url, max_network_retries=0, **options)


@asynccontextmanager
async def running_sandbox() -> AsyncIterator[Sandbox]:
    app = create_app(
        SandboxSettings(
            stripe_webhook_secret=[stripe_events.WEBHOOK_SECRET], sandbox_webhook_url=""
        )
    )
    async with serving(app) as url:
        yield Sandbox(url=url, app=app)
