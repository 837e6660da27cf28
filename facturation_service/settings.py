"""Facturation settings, read once from the environment."""

from __future__ import annotations

from typing import Annotated

import msgspec

from facturation_service.billing_mode import BillingMode
from shared import (
    NonNegative,
    Positive,
    PositiveSeconds,
    Seconds,
    SettingsError,
    load_settings,
)
from shared import database_url as read_database_url

__all__ = ["DEFAULT_DATABASE_URL", "FacturationSettings", "database_url", "read_settings"]

DEFAULT_DATABASE_URL = "sqlite:///.dev/facturation.db"


class FacturationSettings(msgspec.Struct, frozen=True, kw_only=True):
    facturation_database_url: str = DEFAULT_DATABASE_URL
    facturation_database_pool_size: Annotated[int, msgspec.Meta(ge=1, le=1000)] = 20
    """PostgreSQL connections kept open between bursts (SQLite ignores it)."""
    facturation_database_max_overflow: Annotated[int, msgspec.Meta(ge=0, le=1000)] = 10
    """More PostgreSQL connections opened during a burst, each closed when handed back."""
    facturation_database_connections_at_start: Annotated[int, msgspec.Meta(ge=0, le=1000)] = 10
    """PostgreSQL connections opened as the service starts, on each of its two pools (the main
    one, the checkout's order pool; at most each pool's size): the first burst after a start
    finds them open instead of connecting on its way. 0 opens them on demand."""
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
    """Run the background worker that applies journaled events in this process; false when a
    ``python -m facturation_service worker`` process applies them instead."""
    facturation_webhook_poll_seconds: PositiveSeconds = 1.0
    facturation_webhook_concurrency: Annotated[int, msgspec.Meta(ge=1, le=1000)] = 4
    facturation_webhook_batch_size: Annotated[int, msgspec.Meta(ge=1, le=10_000)] = 64
    """Events claimed and applied in one transaction by the worker loop."""
    facturation_webhook_give_way_rate: Annotated[float, msgspec.Meta(ge=0, le=1_000_000)] = 500.0
    """Deliveries a second from which the app's worker loop gives way to acknowledging them
    (0: never); below it, it applies them as they come."""
    facturation_webhook_give_way_seconds: PositiveSeconds = 10.0
    """The longest the app's worker gives way to one burst; past it, it applies at full speed
    again."""
    facturation_webhook_max_attempts: Positive = 8
    facturation_webhook_retry_base_seconds: PositiveSeconds = 2.0
    facturation_webhook_lease_seconds: PositiveSeconds = 60.0
    """After this long, an event a crashed worker left ``processing`` is taken again."""
    facturation_worker_metrics_port: Annotated[int, msgspec.Meta(ge=0, le=65535)] = 0
    """Port of the ``worker`` command's Prometheus metrics; 0 serves none."""
    facturation_refetch_invoices: bool = False
    """Read each invoice from Stripe instead of trusting the event's snapshot."""
    # --- invoice documents (issue 13) ---
    seller_name: str = "Facturation Demo"
    seller_address: str = "1 rue de la Paix; 75002 Paris; France"
    """Printed one line per ``;``-separated part."""
    seller_tax_id: str = ""
    # --- catch-up, reconciliation, billing mode, journal retention (issue 12) ---
    billing_mode: BillingMode = BillingMode.ON
    """``on``; ``read_only`` refuses writes that reach Stripe; ``off`` also pauses the worker."""
    facturation_catchup_seconds: Seconds = 300.0
    """Period of the catch-up from Stripe's event list; 0 turns the periodic pass off."""
    facturation_catchup_overlap_seconds: NonNegative = 600
    """Each pass lists from its cursor minus this much: events Stripe dates a little earlier than
    the newest one already seen are still found (the journal drops the repeats)."""
    facturation_catchup_initial_lookback_seconds: NonNegative = 259_200
    """Where the very first pass starts (3 days: as long as Stripe retries a delivery)."""
    facturation_catchup_page_size: Annotated[int, msgspec.Meta(ge=1, le=100)] = 100
    facturation_reconcile_seconds: Seconds = 900.0
    """Period of the reconciliation of pending orders with Stripe; 0 turns it off."""
    facturation_reconcile_min_age_seconds: Seconds = 1800.0
    """Only orders still ``pending_payment`` this long after they were created are checked."""
    facturation_reconcile_batch_size: Annotated[int, msgspec.Meta(ge=1, le=1000)] = 100
    facturation_journal_retention_days: Annotated[float, msgspec.Meta(ge=31, le=36_500)] = 90.0
    """Processed and ignored events are pruned after this; longer than Stripe keeps events (30
    days), so an event that could still be listed or redelivered is never journaled twice."""
    facturation_journal_prune_seconds: Seconds = 3600.0
    facturation_journal_prune_batch_size: Annotated[int, msgspec.Meta(ge=1, le=10_000)] = 500

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
