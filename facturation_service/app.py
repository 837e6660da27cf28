"""The facturation app factory: settings are read once, clients live as long as the app."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Any

from litestar import Litestar
from litestar.datastructures import State
from litestar.di import Provide
from litestar.types import ControllerRouterHandler

from facturation_service import invoice_routes, operations, routes, webhooks, worker
from facturation_service.auth_client import AuthClient
from facturation_service.billing_mode import publish_billing_mode
from facturation_service.catalog import Catalog, load_catalog
from facturation_service.catchup import CatchUp
from facturation_service.customers import KnownCustomers, UserLocks
from facturation_service.operations import build_operations_jobs
from facturation_service.reconciliation import Reconciler
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
    return [clients, worker.webhook_worker, operations_jobs]


@asynccontextmanager
async def operations_jobs(app: Litestar) -> AsyncIterator[None]:
    """Issue 12: the jobs built once from the app's collaborators, running while the app runs."""
    state = app.state
    jobs = build_operations_jobs(
        state.settings, state.database, state.stripe, getattr(state, "webhook_worker", None)
    )
    state.catch_up, state.reconciler = jobs.catch_up, jobs.reconciler
    async with jobs.running():
        yield


async def _provide_catch_up(state: State) -> CatchUp:
    catch_up: CatchUp = state.catch_up
    return catch_up


async def _provide_reconciler(state: State) -> Reconciler:
    reconciler: Reconciler = state.reconciler
    return reconciler


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
            "billing_mode": mode,  # issue 12: read by the billing-mode guard
        },
        dependencies={  # issue 12
            "catch_up": Provide(_provide_catch_up),
            "reconciler": Provide(_provide_reconciler),
        },
        lifespan=lifespans(),
        health_details=lambda: {"billing_mode": mode.value},  # issue 12
    )
