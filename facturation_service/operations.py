"""Operations: the background jobs that make sure no event is lost (catch-up, reconciliation,
journal retention), built once by the app, and their routes (internal credential, never through
the gateway): ``POST /internal/v1/catch-up``, ``GET`` and ``POST /internal/v1/reconciliation``.

The app builds :class:`OperationsJobs` with :func:`build_operations_jobs`, enters its
:meth:`~OperationsJobs.running` in the lifespan, and provides ``catch_up`` and ``reconciler``
to the routes by name.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass

from litestar import get, post
from litestar.di import NamedDependency
from litestar.status_codes import HTTP_200_OK

from facturation_service.catchup import CatchUp, CatchUpResult
from facturation_service.reconciliation import Reconciler, ReconciliationReport
from facturation_service.retention import JournalRetention
from facturation_service.settings import FacturationSettings
from facturation_service.stripe_api import StripeApi
from facturation_service.worker import HANDLED_EVENT_TYPES, WebhookWorker
from shared import Database

__all__ = ["ROUTE_HANDLERS", "OperationsJobs", "build_operations_jobs"]


@dataclass(frozen=True)
class OperationsJobs:
    catch_up: CatchUp
    reconciler: Reconciler
    retention: JournalRetention

    @contextlib.asynccontextmanager
    async def running(self) -> AsyncIterator[None]:
        """Each job on its own period for as long as the block runs (the app's lifespan)."""
        async with self.catch_up.running(), self.reconciler.running(), self.retention.running():
            yield


def build_operations_jobs(
    settings: FacturationSettings,
    database: Database,
    stripe: StripeApi,
    worker: WebhookWorker | None,
) -> OperationsJobs:
    return OperationsJobs(
        catch_up=CatchUp(
            database,
            stripe,
            handled_types=HANDLED_EVENT_TYPES,
            overlap_seconds=settings.facturation_catchup_overlap_seconds,
            initial_lookback_seconds=settings.facturation_catchup_initial_lookback_seconds,
            page_size=settings.facturation_catchup_page_size,
            period=settings.facturation_catchup_seconds,
            on_recorded=worker.notify if worker is not None else None,
        ),
        reconciler=Reconciler(
            database,
            stripe,
            min_age_seconds=settings.facturation_reconcile_min_age_seconds,
            batch_size=settings.facturation_reconcile_batch_size,
            period=settings.facturation_reconcile_seconds,
            paused=not settings.billing_mode.applies_events,
        ),
        retention=JournalRetention(
            database,
            days=settings.facturation_journal_retention_days,
            batch_size=settings.facturation_journal_prune_batch_size,
            period=settings.facturation_journal_prune_seconds,
        ),
    )


@post(
    "/internal/v1/catch-up",
    status_code=HTTP_200_OK,
    summary="Run one catch-up pass from Stripe's event list now",
)
async def run_catch_up(catch_up: NamedDependency[CatchUp]) -> CatchUpResult:
    """409 while another replica runs one; a Stripe failure answers its 5xx problem, and what
    the pass recorded before it stays recorded."""
    return await catch_up.run_pass()


_EMPTY = ReconciliationReport(checked=0, drifted=0, fixed=0, items=[])


@get("/internal/v1/reconciliation", summary="The report of the last reconciliation run")
async def last_reconciliation(reconciler: NamedDependency[Reconciler]) -> ReconciliationReport:
    """All zeros with ``finished_at: null`` before the first run."""
    return await reconciler.last_report() or _EMPTY


@post(
    "/internal/v1/reconciliation",
    status_code=HTTP_200_OK,
    summary="Run one reconciliation now and report it",
)
async def run_reconciliation(reconciler: NamedDependency[Reconciler]) -> ReconciliationReport:
    """503 while billing is ``off``; 409 while another replica runs one."""
    return await reconciler.run()


ROUTE_HANDLERS = [run_catch_up, last_reconciliation, run_reconciliation]
