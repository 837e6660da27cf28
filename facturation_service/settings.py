"""Facturation settings, read once from the environment."""

from __future__ import annotations

from typing import Annotated

import msgspec

from shared import (
    Positive,
    PositiveSeconds,
    SettingsError,
    load_settings,
)
from shared import database_url as read_database_url

__all__ = ["DEFAULT_DATABASE_URL", "FacturationSettings", "database_url", "read_settings"]

DEFAULT_DATABASE_URL = "sqlite:///.dev/facturation.db"


class FacturationSettings(msgspec.Struct, frozen=True, kw_only=True):
    facturation_database_url: str = DEFAULT_DATABASE_URL
    internal_token: str
    auth_url: str = "http://127.0.0.1:8001"
    auth_timeout_seconds: PositiveSeconds = 5.0
    stripe_secret_key: str = ""
    stripe_publishable_key: str = ""
    stripe_webhook_secret: list[str] = msgspec.field(default_factory=list)
    stripe_api_base: str = ""
    """Points the Stripe client at the local sandbox or a stand-in instead of Stripe."""
    stripe_timeout_seconds: PositiveSeconds = 10.0
    stripe_max_network_retries: Annotated[int, msgspec.Meta(ge=0, le=10)] = 2
    checkout_return_origins: list[str] = msgspec.field(
        default_factory=lambda: ["http://localhost:8000"]
    )
    checkout_default_return_path: str = "/checkout/return?session_id={CHECKOUT_SESSION_ID}"
    catalog_path: str = ""
    """A JSON catalog file; empty means the packaged demo catalog."""
    # --- webhooks (issue 4) ---
    facturation_webhook_worker: bool = True
    """Run the background worker that applies journaled events in this process."""
    facturation_webhook_poll_seconds: PositiveSeconds = 1.0
    facturation_webhook_concurrency: Annotated[int, msgspec.Meta(ge=1, le=1000)] = 4
    facturation_webhook_batch_size: Annotated[int, msgspec.Meta(ge=1, le=10_000)] = 16
    """Events claimed and applied in one transaction by the worker loop."""
    facturation_webhook_max_attempts: Positive = 8
    facturation_webhook_retry_base_seconds: PositiveSeconds = 2.0
    facturation_webhook_lease_seconds: PositiveSeconds = 60.0
    """After this long, an event a crashed worker left ``processing`` is taken again."""
    facturation_refetch_invoices: bool = False
    """Read each invoice from Stripe instead of trusting the event's snapshot."""
    # --- invoice documents (issue 13) ---
    seller_name: str = "Facturation Demo"
    seller_address: str = "1 rue de la Paix; 75002 Paris; France"
    """Printed one line per ``;``-separated part."""
    seller_tax_id: str = ""

    @property
    def stripe_api_key(self) -> str:
        """The key the Stripe client sends; the sandbox accepts any test-shaped key."""
        return self.stripe_secret_key or "sk_test_sandbox"


def read_settings() -> FacturationSettings:
    settings = load_settings(FacturationSettings)
    if not settings.stripe_secret_key and not settings.stripe_api_base:
        raise SettingsError(
            "missing required setting STRIPE_SECRET_KEY (or set STRIPE_API_BASE to the sandbox)"
        )
    return settings


def database_url() -> str:
    """What ``migrate`` needs, so migrations run without the service's secrets."""
    return read_database_url("FACTURATION_DATABASE_URL", DEFAULT_DATABASE_URL)
