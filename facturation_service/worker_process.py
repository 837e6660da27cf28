"""``python -m facturation_service worker``: the webhook worker as a process of its own, so that
applying journaled events gets its own core instead of sharing the app's with the intake.

Run it beside app replicas started with ``FACTURATION_WEBHOOK_WORKER=false`` (they receive and
journal only). It reads the same settings as the app (database, batch size, concurrency, lease,
retries, ``BILLING_MODE``), runs :class:`~facturation_service.worker.WebhookWorker`'s loop, and on
SIGTERM or SIGINT claims nothing more and lets the batches in flight finish before it exits (a
batch cut short by a kill is claimed again after its lease). Any number of these processes and
of app replicas with the worker on can run at once: claims are decided by the database
(``FOR UPDATE SKIP LOCKED`` on PostgreSQL), and an event is marked done only by the claim that
holds it, in the transaction that applies it.

Without the app beside it nobody wakes the loop when an event arrives: it looks every
``FACTURATION_WEBHOOK_POLL_SECONDS``, and claims again at once after a batch as long as events
are due. ``FACTURATION_WORKER_METRICS_PORT`` serves its Prometheus metrics (the events processed
by type and outcome, the age of the oldest waiting event).
"""

from __future__ import annotations

import asyncio
import logging
import signal
import sys

import uvloop
from prometheus_client import start_http_server

from facturation_service.settings import FacturationSettings, read_settings
from facturation_service.stripe_api import StripeApi
from facturation_service.worker import WebhookWorker, event_handlers, worker_config
from shared import Database, SettingsError

__all__ = ["main", "run_worker"]

logger = logging.getLogger("facturation_service.worker_process")


async def run_worker(settings: FacturationSettings, stop: asyncio.Event) -> None:
    """Apply journaled events until ``stop`` is set, then drain the batches in flight."""
    database = Database(
        settings.facturation_database_url,
        pool_size=settings.facturation_database_pool_size,
        max_overflow=settings.facturation_database_max_overflow,
    )
    stripe: StripeApi | None = None
    if settings.facturation_refetch_invoices:
        stripe = StripeApi(
            settings.stripe_api_key,
            api_base=settings.stripe_api_base,
            timeout_seconds=settings.stripe_timeout_seconds,
            max_network_retries=settings.stripe_max_network_retries,
        )
    worker = WebhookWorker(database, worker_config(settings), handlers=event_handlers(stripe))
    try:
        if not settings.billing_mode.applies_events:
            # BILLING_MODE=off: as in the app, events wait in the journal until it is on.
            logger.warning("billing mode off: the webhook worker is paused")
            await stop.wait()
            return
        logger.info("webhook worker started")
        async with worker.running():
            await stop.wait()
        logger.info("webhook worker stopped")
    finally:
        if stripe is not None:
            await stripe.close()
        await database.dispose()


def main() -> int:
    """The ``worker`` command; a bad setting is one line and exit status 2."""
    try:
        settings = read_settings()
    except SettingsError as exc:
        print(f"facturation: {exc}", file=sys.stderr)
        return 2
    if settings.facturation_worker_metrics_port:
        start_http_server(settings.facturation_worker_metrics_port)

    async def serve() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, stop.set)
        await run_worker(settings, stop)

    # The event loop the app's uvicorn runs on: the stdlib loop's selector and socket transport
    # cost the worker a sixth more CPU per event.
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        runner.run(serve())
    return 0
