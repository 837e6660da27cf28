"""The gateway's settings, read once from the environment."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import msgspec

from shared import SettingsError, load_settings

__all__ = ["GatewaySettings", "load_gateway_settings"]

Url = Annotated[str, msgspec.Meta(pattern=r"^https?://[^/\s]+$")]
Seconds = Annotated[float, msgspec.Meta(ge=0)]
PositiveSeconds = Annotated[float, msgspec.Meta(gt=0)]
Positive = Annotated[int, msgspec.Meta(ge=1)]


class GatewaySettings(msgspec.Struct, frozen=True, kw_only=True):
    """Environment: ``INTERNAL_TOKEN``, ``AUTH_URL``, ``FACTURATION_URL``, ``CORS_ORIGINS`` and
    ``GATEWAY_*``.

    ``token_cache_seconds`` bounds how long a revoked token keeps working; 0 asks auth every time.
    ``body_timeout_seconds`` is the whole time a client gets to send its request body (408 past
    it); ``max_requests_per_client`` caps one client address's requests in flight (429 past it);
    ``token_check_max_connections`` are auth connections only token checks use, so forwarded
    ``/api/v1/auth/*`` traffic can never take them.
    ``STRIPE_JS_URL`` and ``STRIPE_PUBLISHABLE_KEY`` reach the SPA through ``/config.js``.
    """

    internal_token: str
    auth_url: Url = "http://127.0.0.1:8001"
    facturation_url: Url = "http://127.0.0.1:8002"
    cors_origins: tuple[str, ...] = ("http://localhost:8000", "http://127.0.0.1:8000")
    token_cache_seconds: Seconds = msgspec.field(default=30.0, name="gateway_token_cache_seconds")
    token_cache_max_entries: Positive = msgspec.field(
        default=10_000, name="gateway_token_cache_max_entries"
    )
    auth_timeout_seconds: PositiveSeconds = msgspec.field(
        default=2.0, name="gateway_auth_timeout_seconds"
    )
    connect_timeout_seconds: PositiveSeconds = msgspec.field(
        default=2.0, name="gateway_connect_timeout_seconds"
    )
    upstream_timeout_seconds: PositiveSeconds = msgspec.field(
        default=30.0, name="gateway_upstream_timeout_seconds"
    )
    max_body_bytes: Positive = msgspec.field(default=1_048_576, name="gateway_max_body_bytes")
    max_connections: Positive = msgspec.field(default=256, name="gateway_max_connections")
    token_check_max_connections: Positive = msgspec.field(
        default=64, name="gateway_token_check_max_connections"
    )
    body_timeout_seconds: PositiveSeconds = msgspec.field(
        default=15.0, name="gateway_body_timeout_seconds"
    )
    max_requests_per_client: Positive = msgspec.field(
        default=64, name="gateway_max_requests_per_client"
    )
    spa_dir: str | None = msgspec.field(default=None, name="gateway_spa_dir")
    stripe_js_url: str = "https://js.stripe.com/v3/"
    stripe_publishable_key: str = ""


def load_gateway_settings() -> GatewaySettings:
    settings = load_settings(GatewaySettings)
    if settings.spa_dir and not Path(settings.spa_dir).is_dir():
        raise SettingsError(
            f"malformed setting GATEWAY_SPA_DIR: {settings.spa_dir} is not a folder"
        )
    return settings
