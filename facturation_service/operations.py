"""Operations routes for catch-up and reconciliation (internal credential, never through the
gateway): ``POST /internal/v1/catch-up``, ``GET`` and ``POST /internal/v1/reconciliation``."""

from __future__ import annotations

from litestar import get, post
from litestar.datastructures import State
from litestar.di import NamedDependency, Provide
from litestar.status_codes import HTTP_200_OK

from facturation_service.catchup import CatchUp, CatchUpResult
from facturation_service.reconciliation import Reconciler, ReconciliationReport
from facturation_service.settings import FacturationSettings
from shared import ServiceUnavailableError

__all__ = ["ROUTE_HANDLERS"]


async def provide_catch_up(state: State) -> CatchUp:
    catch_up: CatchUp = state.catch_up
    return catch_up


async def provide_reconciler(state: State) -> Reconciler:
    reconciler: Reconciler = state.reconciler
    return reconciler


@post(
    "/internal/v1/catch-up",
    status_code=HTTP_200_OK,
    dependencies={"catch_up": Provide(provide_catch_up)},
    summary="Run one catch-up pass from Stripe's event list now",
)
async def run_catch_up(catch_up: NamedDependency[CatchUp]) -> CatchUpResult:
    """409 while another replica runs one; a Stripe failure answers its 5xx problem, and what
    the pass recorded before it stays recorded."""
    return await catch_up.run_pass()


_EMPTY = ReconciliationReport(checked=0, drifted=0, fixed=0, items=[])


@get(
    "/internal/v1/reconciliation",
    dependencies={"reconciler": Provide(provide_reconciler)},
    summary="The report of the last reconciliation run",
)
async def last_reconciliation(reconciler: NamedDependency[Reconciler]) -> ReconciliationReport:
    """All zeros with ``finished_at: null`` before the first run."""
    return await reconciler.last_report() or _EMPTY


@post(
    "/internal/v1/reconciliation",
    status_code=HTTP_200_OK,
    dependencies={"reconciler": Provide(provide_reconciler)},
    summary="Run one reconciliation now and report it",
)
async def run_reconciliation(
    reconciler: NamedDependency[Reconciler], state: State
) -> ReconciliationReport:
    settings: FacturationSettings = state.settings
    if not settings.billing_mode.applies_events:
        raise ServiceUnavailableError(
            "Billing is off: reconciliation waits, like the worker, until it is back on.",
            headers={"Retry-After": "60"},
        )
    return await reconciler.run()


ROUTE_HANDLERS = [run_catch_up, last_reconciliation, run_reconciliation]
