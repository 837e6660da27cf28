"""The billing switch (flow 11): ``BILLING_MODE`` decouples deploying facturation from letting it
act on Stripe, and a rollback from losing anything.

======== ============================ ======================= ============================
mode     writes that reach Stripe     webhooks (verify+store)  worker, reconciliation
======== ============================ ======================= ============================
on       yes                          yes                      yes
read_only 503 problem + Retry-After   yes                      yes
off      503 problem + Retry-After    yes                      paused: events stay pending
======== ============================ ======================= ============================

Reads (invoices, orders, the return page's status) answer in every mode. A write route says so
with ``opt={WRITES_TO_STRIPE: True}``; ``create_app`` adds :func:`billing_mode_guard` for the
mode it read, once, at start-up, so changing it is a restart with the new value, and events held
while ``off`` are then applied once.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Any

from litestar.connection import ASGIConnection
from litestar.handlers.base import BaseRouteHandler
from litestar.types import Guard
from prometheus_client import Gauge

from shared import ServiceUnavailableError

__all__ = [
    "BILLING_MODE_GAUGE",
    "RETRY_AFTER_SECONDS",
    "WRITES_TO_STRIPE",
    "BillingMode",
    "billing_mode_guard",
    "publish_billing_mode",
]

RETRY_AFTER_SECONDS = 60
WRITES_TO_STRIPE = "writes_to_stripe"
"""The route ``opt`` key of every route whose request would create or change something at
Stripe: those answer 503 unless billing is ``on``."""


class BillingMode(StrEnum):
    ON = "on"
    READ_ONLY = "read_only"
    OFF = "off"

    @property
    def writes_to_stripe(self) -> bool:
        return self is BillingMode.ON

    @property
    def applies_events(self) -> bool:
        """Whether the worker (and reconciliation, which applies through the same paths) runs."""
        return self is not BillingMode.OFF


BILLING_MODE_GAUGE = Gauge(
    "facturation_billing_mode",
    "The billing mode this process runs in: 1 for its mode, 0 for the others.",
    ["mode"],
)


def publish_billing_mode(mode: BillingMode) -> None:
    for each in BillingMode:
        BILLING_MODE_GAUGE.labels(mode=each.value).set(1 if each is mode else 0)


def billing_mode_guard(mode: BillingMode) -> Guard:
    """The app guard for ``mode``: a route marked :data:`WRITES_TO_STRIPE` answers 503 unless
    billing is ``on``; every other route passes."""

    async def stripe_writes_allowed(
        _: ASGIConnection[Any, Any, Any, Any], route_handler: BaseRouteHandler
    ) -> None:
        """Raises:
        ServiceUnavailableError: the route writes to Stripe and the mode is ``read_only`` or
            ``off``.
        """
        if mode.writes_to_stripe or not route_handler.opt.get(WRITES_TO_STRIPE):
            return
        raise ServiceUnavailableError(
            f"Billing is {mode.value.replace('_', '-')} for maintenance: nothing can be bought "
            "or changed right now. Invoices and orders can still be read.",
            headers={"Retry-After": str(RETRY_AFTER_SECONDS)},
            extra={"billing_mode": mode.value},
        )

    return stripe_writes_allowed
