"""The sandbox app: Stripe's API in Stripe's wire format, the stand-in Stripe.js, and test
controls. A dev and test tool: it never runs in production."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from litestar import Litestar, Request, Response
from litestar.config.cors import CORSConfig
from litestar.datastructures import State
from litestar.exceptions import HTTPException

from shared import freeze_startup_objects
from stripe_sandbox.api import error_response
from stripe_sandbox.errors import StripeApiError, api_error, invalid_request
from stripe_sandbox.objects import new_id
from stripe_sandbox.payment_routes import payment_route_handlers
from stripe_sandbox.portal import portal_route_handlers
from stripe_sandbox.routes import api_route_handlers
from stripe_sandbox.sandbox_routes import sandbox_route_handlers
from stripe_sandbox.settings import SandboxSettings, read_settings
from stripe_sandbox.state import SandboxState
from stripe_sandbox.subscription_routes import subscription_route_handlers
from stripe_sandbox.webhooks import WebhookSender

__all__ = ["create_app"]


def _http_error(request: Request[Any, Any, Any], exc: HTTPException) -> Response[bytes]:
    if exc.status_code == 404:
        error = invalid_request(
            f"Unrecognized request URL ({request.method}: {request.url.path}).", status=404
        )
    elif exc.status_code == 405:
        error = invalid_request(
            f"Unrecognized request URL ({request.method}: {request.url.path}).", status=405
        )
    else:
        error = StripeApiError(exc.status_code, "invalid_request_error", str(exc.detail))
    return error_response(error, new_id("req_", 14))


def _unexpected_error(request: Request[Any, Any, Any], exc: Exception) -> Response[bytes]:
    request.logger.exception("sandbox error")
    return error_response(
        api_error("An unexpected error occurred in the sandbox."), new_id("req_", 14)
    )


def create_app(settings: SandboxSettings | None = None) -> Litestar:
    settings = settings or read_settings()
    state = SandboxState(
        latency_ms=settings.sandbox_latency_ms,
        failure_rate=settings.sandbox_failure_rate,
        webhook_url=settings.sandbox_webhook_url,
    )
    sender = WebhookSender(
        state,
        secrets=settings.stripe_webhook_secret,
        max_attempts=settings.sandbox_webhook_max_attempts,
        retry_base_seconds=settings.sandbox_webhook_retry_base_ms / 1000,
        timeout_seconds=settings.sandbox_webhook_timeout_seconds,
    )

    @asynccontextmanager
    async def close_sender(_: Litestar) -> AsyncIterator[None]:
        try:
            yield
        finally:
            await sender.aclose()

    return Litestar(
        route_handlers=[
            *api_route_handlers,
            *payment_route_handlers,
            *subscription_route_handlers,
            *portal_route_handlers,
            *sandbox_route_handlers,
        ],
        state=State({"sandbox": state, "webhook_sender": sender, "settings": settings}),
        lifespan=[close_sender],
        # Its start-up objects out of the collector's sight, as the services': a full
        # collection walked 140,000 objects (83 ms) in the middle of a checkout bench round.
        on_startup=[freeze_startup_objects],
        exception_handlers={HTTPException: _http_error, Exception: _unexpected_error},
        # The stand-in Stripe.js runs on the app's origin and calls back here.
        cors_config=CORSConfig(
            allow_origins=["*"],
            allow_methods=["GET", "POST", "DELETE", "OPTIONS"],
            allow_headers=["Content-Type", "Authorization"],
        ),
        openapi_config=None,
        logging_config=None,
        request_max_body_size=1_048_576,
    )
