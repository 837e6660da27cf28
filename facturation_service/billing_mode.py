"""The billing switch (flow 11): ``BILLING_MODE`` decouples deploying facturation from letting it
act on Stripe, and a rollback from losing anything.

======== ============================ ======================= ============================
mode     writes that reach Stripe     webhooks (verify+store)  worker, reconciliation
======== ============================ ======================= ============================
on       yes                          yes                      yes
read_only 503 problem + Retry-After   yes                      yes
off      503 problem + Retry-After    yes                      paused: events stay pending
======== ============================ ======================= ============================

Reads (invoices, orders, the return page's status) answer in every mode. A write route takes
:func:`stripe_writes_allowed` as a guard; the mode is read once at start-up, so changing it is
a restart with the new value, and events held while ``off`` are then applied once.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Any

from litestar.connection import ASGIConnection
from litestar.handlers.base import BaseRouteHandler
from prometheus_client import Gauge

from shared import ServiceUnavailableError

__all__ = [
    "BILLING_MODE_GAUGE",
    "RETRY_AFTER_SECONDS",
    "BillingMode",
    "publish_billing_mode",
    "stripe_writes_allowed",
]

RETRY_AFTER_SECONDS = 60


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


def _mode(connection: ASGIConnection[Any, Any, Any, Any]) -> BillingMode:
    # A guard sees only the connection: the app factory puts the mode in the app's state.
    mode: BillingMode = connection.app.state.billing_mode
    return mode


async def stripe_writes_allowed(
    connection: ASGIConnection[Any, Any, Any, Any], _: BaseRouteHandler
) -> None:
    """Guard of every route whose request would create or change something at Stripe.

    Raises:
        ServiceUnavailableError: the billing mode is ``read_only`` or ``off``.
    """
    mode = _mode(connection)
    if not mode.writes_to_stripe:
        raise ServiceUnavailableError(
            f"Billing is {mode.value.replace('_', '-')} for maintenance: nothing can be bought "
            "or changed right now. Invoices and orders can still be read.",
            headers={"Retry-After": str(RETRY_AFTER_SECONDS)},
            extra={"billing_mode": mode.value},
        )
