"""Facturation settings, read once from the environment."""

from __future__ import annotations

import msgspec

from shared import SettingsError, load_settings

__all__ = ["FacturationSettings", "read_settings"]


class FacturationSettings(msgspec.Struct, frozen=True, kw_only=True, rename="upper"):
    facturation_database_url: str = "sqlite:///.dev/facturation.db"
    internal_token: str
    auth_url: str = "http://127.0.0.1:8001"
    auth_timeout_seconds: float = 5.0
    stripe_secret_key: str = ""
    stripe_publishable_key: str = ""
    stripe_webhook_secret: list[str] = msgspec.field(default_factory=list)
    stripe_api_base: str = ""
    """Points the Stripe client at the local sandbox or a stand-in instead of Stripe."""
    stripe_timeout_seconds: float = 10.0
    stripe_max_network_retries: int = 2
    checkout_return_origins: list[str] = msgspec.field(
        default_factory=lambda: ["http://localhost:8000"]
    )
    checkout_default_return_path: str = "/checkout/return?session_id={CHECKOUT_SESSION_ID}"
    catalog_path: str = ""
    """A JSON catalog file; empty means the packaged demo catalog."""

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
