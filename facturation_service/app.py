"""The composition root: ``create_app`` reads the settings once, builds every collaborator once
(or takes the test doubles it is handed), and injects each with ``Provide``. Routes name what they
use; nothing reads ``app.state``. The lifespan starts the worker and the periodic jobs and closes
the clients this factory built.

What a route can ask for, by name: ``catalog``, ``auth``, ``customers``, ``checkout``,
``webhook_intake``, ``webhook_worker``, ``seller``, ``refunds``, ``catch_up``, ``reconciler``,
``subscriptions``, and ``db_session`` (from ``shared``). The periodic jobs are catch-up,
reconciliation and journal retention; ``BILLING_MODE=off`` keeps the worker paused. The
billing-mode guard is an app guard built for the mode read here, refusing only the routes
marked ``WRITES_TO_STRIPE``. Stripe's deliveries take the webhook lane in front of the app
(``webhook_lane.py``), which answers them as the route would.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AsyncExitStack, asynccontextmanager
from typing import TypeVar

from litestar import Litestar
from litestar.di import Provide
from litestar.types import ASGIApp

from facturation_service import (
    invoice_document_routes,
    invoice_routes,
    operations,
    order_routes,
    refund_routes,
    routes,
    subscription_routes,
    webhooks,
)
from facturation_service.api_docs import API_DOCS
from facturation_service.auth_client import AuthApi, AuthClient
from facturation_service.billing_mode import billing_mode_guard, publish_billing_mode
from facturation_service.catalog import Catalog, load_catalog
from facturation_service.checkout import Checkout
from facturation_service.customers import Customers, KnownCustomers, UserLocks
from facturation_service.invoice_documents import seller_from_settings
from facturation_service.journal import JournalWriter
from facturation_service.operations import build_operations_jobs
from facturation_service.refunds import Refunds
from facturation_service.settings import FacturationSettings, read_settings
from facturation_service.stripe_api import StripeApi
from facturation_service.subscriptions import Subscriptions
from facturation_service.webhook_lane import WebhookLane
from facturation_service.webhooks import WebhookIntake
from facturation_service.worker import WebhookWorker, event_handlers, worker_config
from shared import (
    DEFAULT_MAX_BODY_BYTES,
    MAX_JSON_DEPTH,
    Database,
    RequestMetrics,
    create_service_app,
    metrics_config,
)

__all__ = ["create_app", "load", "open_database_connections"]

T = TypeVar("T")

logger = logging.getLogger("facturation_service.app")

CONNECT_AT_START_SECONDS = 5.0
"""The longest a start waits for its database connections (then requests connect on demand)."""

ROUTE_HANDLERS = [
    *routes.ROUTE_HANDLERS,
    *invoice_routes.ROUTE_HANDLERS,
    *invoice_document_routes.ROUTE_HANDLERS,
    *webhooks.ROUTE_HANDLERS,
    *order_routes.ROUTE_HANDLERS,
    *refund_routes.ROUTE_HANDLERS,
    *operations.ROUTE_HANDLERS,
    *subscription_routes.ROUTE_HANDLERS,
]


def load() -> tuple[FacturationSettings, Catalog]:
    """Everything read at start-up; a bad setting or catalog stops the service in one line."""
    settings = read_settings()
    return settings, load_catalog(settings.catalog_path or None)


def create_app(
    settings: FacturationSettings | None = None,
    *,
    stripe: StripeApi | None = None,
    auth: AuthApi | None = None,
) -> Litestar:
    """Build the facturation app and, once, everything its routes and worker use.

    Args:
        settings: read from the environment when not given.
        stripe: a Stripe client to use instead of the one built from the settings.
        auth: an auth client (or a double) to use instead of the one built from the settings.
            Whoever hands in ``stripe`` or ``auth`` closes it.
    """
    if settings is None:
        settings, catalog = load()
    else:
        catalog = load_catalog(settings.catalog_path or None)
    mode = settings.billing_mode
    publish_billing_mode(mode)
    to_close: list[Callable[[], Awaitable[None]]] = []
    if stripe is None:
        stripe = StripeApi(
            settings.stripe_api_key,
            api_base=settings.stripe_api_base,
            timeout_seconds=settings.stripe_timeout_seconds,
            max_network_retries=settings.stripe_max_network_retries,
        )
        to_close.append(stripe.close)
    if auth is None:
        auth = AuthClient(
            settings.auth_url, settings.internal_token, timeout=settings.auth_timeout_seconds
        )
        to_close.append(auth.close)
    database = Database(
        settings.facturation_database_url,
        pool_size=settings.facturation_database_pool_size,
        max_overflow=settings.facturation_database_max_overflow,
    )
    customers = Customers(database, stripe, auth, locks=UserLocks(), known=KnownCustomers())
    checkout = Checkout(
        database,
        stripe,
        customers,
        catalog,
        return_origins=settings.checkout_return_origins,
        default_return_path=settings.checkout_default_return_path,
    )
    journal_writer = JournalWriter(database.engine)
    webhook_worker = WebhookWorker(
        database,
        worker_config(settings),
        handlers=event_handlers(stripe if settings.facturation_refetch_invoices else None),
        intake=journal_writer,
    )
    webhook_intake = WebhookIntake(settings.stripe_webhook_secret, journal_writer, webhook_worker)
    jobs = build_operations_jobs(settings, database, stripe, webhook_worker)

    @asynccontextmanager
    async def lifespan(_app: Litestar) -> AsyncIterator[None]:
        await open_database_connections(
            database, settings.facturation_database_connections_at_start
        )
        async with AsyncExitStack() as stack:
            for close in to_close:
                stack.push_async_callback(close)
            stack.push_async_callback(journal_writer.drain)
            if settings.facturation_webhook_worker and not mode.applies_events:
                # BILLING_MODE=off: the intake still journals; nothing is applied until on.
                logger.warning("billing mode off: the webhook worker is paused")
            elif settings.facturation_webhook_worker:
                # Entered after the clients, left before them: the worker stops first.
                await stack.enter_async_context(webhook_worker.running())
            # Catch-up, reconciliation and retention, each on its own period; left first.
            await stack.enter_async_context(jobs.running())
            yield

    def webhook_lane(app: ASGIApp) -> ASGIApp:  # in front of the request id middleware
        return WebhookLane(
            app,
            webhook_intake,
            RequestMetrics(metrics_config("facturation")),
            internal_token=settings.internal_token,
            max_body_bytes=DEFAULT_MAX_BODY_BYTES,
            max_json_depth=MAX_JSON_DEPTH,
        )

    return create_service_app(
        service="facturation",
        route_handlers=ROUTE_HANDLERS,
        internal_token=settings.internal_token,
        database=database,
        dependencies={
            "catalog": _provide(catalog),
            "auth": _provide(auth),
            "customers": _provide(customers),
            "checkout": _provide(checkout),
            "webhook_intake": _provide(webhook_intake),
            "webhook_worker": _provide(webhook_worker),
            "seller": _provide(seller_from_settings(settings)),
            "refunds": _provide(Refunds(database, stripe)),
            "catch_up": _provide(jobs.catch_up),
            "reconciler": _provide(jobs.reconciler),
            "subscriptions": _provide(
                Subscriptions(database, stripe, return_origins=settings.checkout_return_origins)
            ),
        },
        guards=[billing_mode_guard(mode)],
        lifespan=[lifespan],
        health_details=lambda: {"billing_mode": mode.value},
        api_docs=API_DOCS,
        front=webhook_lane,
    )


async def open_database_connections(database: Database, count: int) -> None:
    """Opens ``count`` connections on each pool before the first request: the checkout's order
    pool (``Database.insert_row``, where ``Checkout`` writes its row) and the main one
    (customers, everything else).

    A first burst after a start otherwise opened them on its way: in the checkout bench's
    first round of 100, the order pool went from 1 to 10 connections while 100 rows waited
    for them, and that round ran 30 ms slower than the next ones (docs/benchmarks.md). A
    database that cannot give them now is no reason not to start: requests then connect on
    demand, as they always could.
    """
    try:
        async with asyncio.timeout(CONNECT_AT_START_SECONDS):
            await database.open_connections(count)
    except Exception as exc:  # (an ExceptionGroup of the driver's errors, or the timeout)
        logger.warning("database connections not opened at start-up: %r", exc)


def _provide(collaborator: T) -> Provide:
    """Inject one object the app built; every request gets the same one."""

    async def provide() -> T:
        return collaborator

    return Provide(provide, use_cache=True)
