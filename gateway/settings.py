"""The gateway's settings, read once from the environment."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import msgspec

from shared import NonNegative, Positive, PositiveSeconds, Seconds, SettingsError, load_settings

__all__ = ["GatewaySettings", "load_gateway_settings"]

Url = Annotated[str, msgspec.Meta(pattern=r"^https?://[^/\s]+$")]


class GatewaySettings(msgspec.Struct, frozen=True, kw_only=True):
    """Environment: ``INTERNAL_TOKEN``, ``AUTH_URL``, ``FACTURATION_URL``, ``CORS_ORIGINS`` and
    ``GATEWAY_*``.

    ``gateway_token_cache_seconds`` bounds how long a revoked token keeps working; 0 asks auth
    every time. ``gateway_body_timeout_seconds`` is the whole time a client gets to send its
    request body (408 past it); ``gateway_max_requests_per_client`` caps one client address's
    requests in flight (429 past it); ``gateway_token_check_max_connections`` are auth
    connections only token checks use, so forwarded ``/api/v1/auth/*`` traffic can never take
    them. ``gateway_webhook_relay_in_flight`` bounds the requests to facturation under way for
    Stripe's deliveries: those read together, or while all of them are under way, travel in one
    (``webhook_relay.py``); 0 forwards every delivery alone. ``STRIPE_JS_URL`` and
    ``STRIPE_PUBLISHABLE_KEY`` reach the SPA through ``/config.js``.
    """

    internal_token: str
    auth_url: Url = "http://127.0.0.1:8001"
    facturation_url: Url = "http://127.0.0.1:8002"
    cors_origins: tuple[str, ...] = ("http://localhost:8000", "http://127.0.0.1:8000")
    gateway_token_cache_seconds: Seconds = 30.0
    gateway_token_cache_max_entries: Positive = 10_000
    gateway_auth_timeout_seconds: PositiveSeconds = 2.0
    gateway_connect_timeout_seconds: PositiveSeconds = 2.0
    gateway_upstream_timeout_seconds: PositiveSeconds = 30.0
    gateway_max_body_bytes: Positive = 1_048_576
    gateway_max_connections: Positive = 256
    gateway_token_check_max_connections: Positive = 64
    gateway_body_timeout_seconds: PositiveSeconds = 15.0
    gateway_max_requests_per_client: Positive = 64
    gateway_webhook_relay_in_flight: NonNegative = 2
    gateway_spa_dir: str | None = None
    stripe_js_url: str = "https://js.stripe.com/v3/"
    stripe_publishable_key: str = ""


def load_gateway_settings() -> GatewaySettings:
    settings = load_settings(GatewaySettings)
    if settings.gateway_spa_dir and not Path(settings.gateway_spa_dir).is_dir():
        raise SettingsError(
            f"malformed setting GATEWAY_SPA_DIR: {settings.gateway_spa_dir} is not a folder"
        )
    return settings
