"""The gateway's app factory: settings read once, one connection pool per private service opened
at start-up and closed at shutdown, the proxy mounted behind CORS, request ids and metrics.

Token checks have a pool of their own to auth: forwarded ``/api/v1/auth/*`` requests (slow
logins, a registration burst) can fill the forwarding pool, never the connections that decide
whether a token is valid.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import msgspec
from litestar import Litestar, Response, asgi, get
from litestar.config.cors import CORSConfig
from litestar.static_files import create_static_files_router
from litestar.types import ASGIApp, ControllerRouterHandler

from gateway.fast_lane import ProxyLane
from gateway.openapi import OPENAPI_PATH, PublicApiDocument
from gateway.proxy import ClientBudget, Proxy, Upstream
from gateway.routes import API_PREFIX
from gateway.settings import GatewaySettings, load_gateway_settings
from gateway.token_check import DecisionCache, TokenChecker
from gateway.webhook_relay import WebhookRelay
from shared import (
    REQUEST_ID_HEADER,
    RequestMetrics,
    create_service_app,
    metrics_config,
)

__all__ = ["create_app", "load"]

WEBHOOK_PATH = "/webhooks/stripe"


def load() -> GatewaySettings:
    """Read the settings; ``python -m gateway`` calls it before starting workers."""
    return load_gateway_settings()


def _cors(settings: GatewaySettings) -> CORSConfig:
    return CORSConfig(
        allow_origins=list(settings.cors_origins),
        allow_methods=["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"],
        allow_headers=["Authorization", "Content-Type", REQUEST_ID_HEADER],
        expose_headers=[REQUEST_ID_HEADER],
        max_age=600,
    )


def spa_config_route(settings: GatewaySettings) -> ControllerRouterHandler:
    """``/config.js``: where the SPA loads Stripe.js from and with which publishable key, so one
    SPA folder serves the sandbox offline and Stripe in production."""
    config = {
        "apiBase": API_PREFIX,
        "stripeJsUrl": settings.stripe_js_url,
        "stripePublishableKey": settings.stripe_publishable_key,
    }
    script = b"window.FACTURATION_CONFIG = " + msgspec.json.encode(config) + b";\n"

    @get("/config.js", include_in_schema=False, sync_to_thread=False)
    def spa_config() -> Response[bytes]:
        return Response(
            script,
            media_type="text/javascript; charset=utf-8",
            headers={"Cache-Control": "no-store"},
        )

    return spa_config


def create_app(settings: GatewaySettings | None = None) -> Litestar:
    settings = settings or load()
    upstreams = {
        name: Upstream(
            name,
            url,
            connect_timeout=settings.gateway_connect_timeout_seconds,
            timeout=settings.gateway_upstream_timeout_seconds,
            max_connections=settings.gateway_max_connections,
        )
        for name, url in (("auth", settings.auth_url), ("facturation", settings.facturation_url))
    }
    token_check_auth = Upstream(
        "auth",
        settings.auth_url,
        connect_timeout=settings.gateway_connect_timeout_seconds,
        timeout=settings.gateway_auth_timeout_seconds,
        max_connections=settings.gateway_token_check_max_connections,
    )
    pools = [*upstreams.values(), token_check_auth]
    token_checker = TokenChecker(
        token_check_auth,
        internal_token=settings.internal_token,
        timeout=settings.gateway_auth_timeout_seconds,
        cache=DecisionCache(
            settings.gateway_token_cache_seconds, settings.gateway_token_cache_max_entries
        ),
    )
    relay = (
        WebhookRelay(
            upstreams["facturation"],
            settings.internal_token.encode(),
            max_in_flight=settings.gateway_webhook_relay_in_flight,
        )
        if settings.gateway_webhook_relay_in_flight
        else None
    )
    proxy = Proxy(
        upstreams,
        token_checker,
        internal_token=settings.internal_token,
        max_body_bytes=settings.gateway_max_body_bytes,
        body_timeout=settings.gateway_body_timeout_seconds,
        client_budget=ClientBudget(settings.gateway_max_requests_per_client),
        relay=relay,
    )

    public_document = PublicApiDocument(upstreams, internal_token=settings.internal_token)

    @get(OPENAPI_PATH, summary="The public API document", include_in_schema=False)
    async def openapi_document() -> Response[bytes]:
        return Response(await public_document.document(), media_type="application/json")

    @asynccontextmanager
    async def connection_pools(_app: Litestar) -> AsyncIterator[None]:
        for upstream in pools:
            upstream.open()
        try:
            yield
        finally:
            if relay is not None:
                await relay.close()
            for upstream in pools:
                upstream.close()

    route_handlers: list[ControllerRouterHandler] = [
        openapi_document,
        asgi(API_PREFIX, is_mount=True, copy_scope=False, name="api")(proxy.__call__),
        asgi(WEBHOOK_PATH, copy_scope=False, name="stripe_webhook")(proxy.__call__),
    ]
    if settings.gateway_spa_dir:
        route_handlers += [
            spa_config_route(settings),
            create_static_files_router(
                "/",
                directories=[Path(settings.gateway_spa_dir)],
                html_mode=True,
                include_in_schema=False,
            ),
        ]
    metrics = RequestMetrics(metrics_config("gateway"))

    def proxy_lane(app: ASGIApp) -> ASGIApp:  # in front of the request id middleware
        return ProxyLane(
            app, proxy, metrics, mount=API_PREFIX, exact=WEBHOOK_PATH, excluded=OPENAPI_PATH
        )

    return create_service_app(
        service="gateway",
        route_handlers=route_handlers,
        internal_token=None,
        readiness={name: upstream.healthy for name, upstream in upstreams.items()},
        state={"token_cache": token_checker.cache},
        lifespan=[connection_pools],
        cors_config=_cors(settings),
        request_max_body_size=settings.gateway_max_body_bytes,
        # The services apply the JSON policy themselves; the gateway passes bodies on as bytes.
        max_json_depth=None,
        front=proxy_lane,
    )
