"""The facturation app factory: settings are read once, clients live as long as the app."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Any

from litestar import Litestar
from litestar.types import ControllerRouterHandler

from facturation_service import invoice_routes, operations, routes, webhooks, worker
from facturation_service.auth_client import AuthClient
from facturation_service.billing_mode import publish_billing_mode
from facturation_service.catalog import Catalog, load_catalog
from facturation_service.catchup import catch_up_loop
from facturation_service.customers import KnownCustomers, UserLocks
from facturation_service.reconciliation import reconciliation_loop
from facturation_service.retention import retention_loop
from facturation_service.settings import FacturationSettings, read_settings
from facturation_service.stripe_api import StripeApi
from shared import Database, create_service_app

__all__ = ["create_app", "load"]

Lifespan = Callable[[Litestar], AbstractAsyncContextManager[Any]]

# Each part of the service adds its handlers and background tasks to these two lists.
ROUTE_HANDLERS: Sequence[ControllerRouterHandler] = [
    *routes.ROUTE_HANDLERS,
    *webhooks.ROUTE_HANDLERS,
    *invoice_routes.ROUTE_HANDLERS,
    *operations.ROUTE_HANDLERS,  # issue 12
]


def lifespans() -> list[Lifespan]:
    # Issue 12: catch-up, reconciliation and retention need the clients and the worker.
    return [clients, worker.webhook_worker, catch_up_loop, reconciliation_loop, retention_loop]


@asynccontextmanager
async def clients(app: Litestar) -> AsyncIterator[None]:
    """Stripe's and auth's HTTP clients, opened on the app's event loop and closed with it."""
    settings: FacturationSettings = app.state.settings
    app.state.stripe = StripeApi(
        settings.stripe_api_key,
        api_base=settings.stripe_api_base,
        timeout_seconds=settings.stripe_timeout_seconds,
        max_network_retries=settings.stripe_max_network_retries,
    )
    app.state.auth = AuthClient(
        settings.auth_url, settings.internal_token, timeout=settings.auth_timeout_seconds
    )
    try:
        yield
    finally:
        await app.state.stripe.close()
        await app.state.auth.close()


def load() -> tuple[FacturationSettings, Catalog]:
    """Everything read at start-up; a bad setting or catalog stops the service in one line."""
    settings = read_settings()
    return settings, load_catalog(settings.catalog_path or None)


def create_app(settings: FacturationSettings | None = None) -> Litestar:
    if settings is None:
        settings, catalog = load()
    else:
        catalog = load_catalog(settings.catalog_path or None)
    mode = settings.billing_mode
    publish_billing_mode(mode)  # issue 12
    return create_service_app(
        service="facturation",
        route_handlers=ROUTE_HANDLERS,
        internal_token=settings.internal_token,
        database=Database(settings.facturation_database_url),
        state={
            "settings": settings,
            "catalog": catalog,
            "customer_locks": UserLocks(),
            "known_customers": KnownCustomers(),
        },
        lifespan=lifespans(),
        health_details=lambda: {"billing_mode": mode.value},  # issue 12
    )
