"""Sandbox settings, read once from the environment."""

from __future__ import annotations

from typing import Annotated

import msgspec

from shared import Positive, PositiveSeconds, Share, load_settings

__all__ = ["SandboxSettings", "read_settings"]

Milliseconds = Annotated[int, msgspec.Meta(ge=0, le=600_000)]


class SandboxSettings(msgspec.Struct, frozen=True, kw_only=True):
    stripe_webhook_secret: list[str] = msgspec.field(default_factory=list)
    """Events are signed with every secret listed, as Stripe does while a secret rotates."""
    sandbox_webhook_url: str = "http://127.0.0.1:8000/webhooks/stripe"
    """Where events are delivered; empty disables delivery (events are still recorded)."""
    sandbox_public_url: str = ""
    """The sandbox's own address in URLs it hands out (hosted invoices); empty: the request's."""
    sandbox_latency_ms: Milliseconds = 0
    sandbox_failure_rate: Share = 0.0
    """Share of API requests answered 500 api_error, for fault tests."""
    sandbox_webhook_max_attempts: Positive = 8
    sandbox_webhook_retry_base_ms: Milliseconds = 500
    sandbox_webhook_timeout_seconds: PositiveSeconds = 10.0
    sandbox_account_country: str = "FR"
    sandbox_account_name: str = "Facturation Sandbox"


def read_settings() -> SandboxSettings:
    return load_settings(SandboxSettings)
