"""Reconciliation (flow 10): orders whose local state disagrees with Stripe's are found, corrected
through the same paths events take, and reported.

An order still ``pending_payment`` some time after it was created is compared with its Checkout
Session: complete and paid → the fulfil step; expired → ``expired``. The corrections are the
conditional UPDATEs the webhook path uses, so a late event and a reconciliation never move an
order twice.

A subscription still live locally some time after its period ended (a renewal or an end whose
events never came) is read from Stripe; when its status, period end or scheduled cancel differ,
Stripe's snapshot is applied through the event path (``subscriptions.apply_subscription_snapshot``,
as of now, so a newer event snapshot still wins), which also moves its slot and entitlement.
"""

from __future__ import annotations

import contextlib
import logging
import time
from datetime import datetime, timedelta
from typing import Any

import msgspec
from sqlalchemy import insert, select
from sqlalchemy.ext.asyncio import AsyncSession

from facturation_service.billing_mode import RETRY_AFTER_SECONDS
from facturation_service.leases import Lease
from facturation_service.models import (
    Order,
    OrderStatus,
    ReconciliationRun,
    Subscription,
    utcnow,
)
from facturation_service.order_events import apply_checkout_session_event
from facturation_service.periodic import every
from facturation_service.stripe_api import StripeApi
from facturation_service.subscriptions import ENDED_STATUSES, apply_subscription_snapshot
from shared import ClientError, ConflictError, Database, ServerError, ServiceUnavailableError

__all__ = [
    "Reconciler",
    "ReconciliationItem",
    "ReconciliationReport",
    "fulfil_paid_checkout",
]

logger = logging.getLogger("facturation_service.reconciliation")

LEASE_NAME = "reconciliation"
_PAID = frozenset({"paid", "no_payment_required"})


async def fulfil_paid_checkout(session: AsyncSession, checkout_session: dict[str, Any]) -> None:
    """The fulfil step for an order whose Checkout Session is complete and paid: the same path
    ``checkout.session.completed`` takes (``order_events`` → ``fulfilment.mark_paid_and_fulfil``),
    so an order is fulfilled once whichever of the webhook, the return page or this run is first.
    """
    await apply_checkout_session_event(session, "checkout.session.completed", checkout_session)


async def expire_order(session: AsyncSession, checkout_session: dict[str, Any]) -> None:
    await apply_checkout_session_event(session, "checkout.session.expired", checkout_session)


class ReconciliationItem(msgspec.Struct):
    order_id: str | None
    """The order checked (for a subscription: the order that bought it, if known)."""
    checkout_session_id: str | None
    local_status: str
    """The order's (or subscription's) status when it was checked."""
    stripe_status: str | None
    payment_status: str | None
    action: str
    """``fulfilled`` | ``expired`` | ``applied`` (a subscription took Stripe's snapshot)
    (corrected), ``already_settled`` (an event got there first), ``error`` (Stripe refused to
    show the session or subscription)."""
    status: str
    """The order's (or subscription's) status after the run."""
    error: str | None = None
    subscription_id: str | None = None
    """Set for a subscription item."""


class ReconciliationReport(msgspec.Struct):
    checked: int
    drifted: int
    fixed: int
    items: list[ReconciliationItem]
    complete: bool = True
    """``False`` when Stripe failed mid-run; the orders not reached are checked next run."""
    started_at: datetime | None = None
    finished_at: datetime | None = None


class Reconciler:
    def __init__(
        self,
        database: Database,
        stripe_api: StripeApi,
        *,
        min_age_seconds: float = 1800.0,
        batch_size: int = 100,
        lease_seconds: float = 600.0,
        period: float = 0.0,
        paused: bool = False,
    ) -> None:
        """Reconcile pending orders older than ``min_age_seconds`` with Stripe.

        Args:
            period: seconds between two runs while :meth:`running`; 0: on demand only.
            paused: billing is ``off``: it corrects orders, which ``off`` holds back like the
                worker, so it neither runs periodically nor on demand.
        """
        self.database = database
        self.stripe = stripe_api
        self.min_age = timedelta(seconds=min_age_seconds)
        self.batch_size = batch_size
        self.lease_seconds = lease_seconds
        self.period = period
        self.paused = paused

    async def run(self) -> ReconciliationReport:
        """One run under the lease, stored as the last report.

        Raises:
            ConflictError: another replica is running one right now.
            ServiceUnavailableError: billing is ``off``.
        """
        if self.paused:
            raise ServiceUnavailableError(
                "Billing is off: reconciliation waits, like the worker, until it is back on.",
                headers={"Retry-After": str(RETRY_AFTER_SECONDS)},
            )
        async with Lease(self.database.engine, LEASE_NAME, seconds=self.lease_seconds) as held:
            if not held:
                raise ConflictError("A reconciliation is already running on another replica.")
            return await self.run_unlocked()

    def running(self) -> contextlib.AbstractAsyncContextManager[None]:
        """A run every ``period`` for as long as the block runs (the app's lifespan)."""
        return every(0 if self.paused else self.period, "reconciliation", self.scheduled_run)

    async def scheduled_run(self) -> None:
        with contextlib.suppress(ConflictError):
            await self.run()

    async def run_unlocked(self) -> ReconciliationReport:
        started_at = utcnow()
        async with self.database.sessionmaker() as session:
            orders = (
                await session.scalars(
                    select(Order)
                    .where(
                        Order.status == OrderStatus.PENDING_PAYMENT,
                        Order.stripe_checkout_session_id.is_not(None),
                        Order.created_at < started_at - self.min_age,
                    )
                    .order_by(Order.created_at)
                    .limit(self.batch_size)
                )
            ).all()
        report = ReconciliationReport(checked=0, drifted=0, fixed=0, items=[])
        for order in orders:
            try:
                item = await self._reconcile(order.id, str(order.stripe_checkout_session_id))
            except ServerError as exc:
                # Stripe is down or slow: stop, the rest is checked next run.
                logger.warning("reconciliation stopped: Stripe failed", extra={"error": str(exc)})
                report.complete = False
                break
            report.checked += 1
            if item is not None:
                report.items.append(item)
                report.drifted += 1
                report.fixed += item.action in ("fulfilled", "expired")
        if report.complete:
            await self._reconcile_subscriptions(report, started_at)
        report.started_at, report.finished_at = started_at, utcnow()
        await self._store(report)
        logger.info(
            "reconciliation done",
            extra={"checked": report.checked, "drifted": report.drifted, "fixed": report.fixed},
        )
        return report

    async def _reconcile(self, order_id: str, session_id: str) -> ReconciliationItem | None:
        """The drift found for one order and what was done; ``None`` when it agrees with Stripe."""
        item = ReconciliationItem(
            order_id=order_id,
            checkout_session_id=session_id,
            local_status=OrderStatus.PENDING_PAYMENT,
            stripe_status=None,
            payment_status=None,
            action="error",
            status=OrderStatus.PENDING_PAYMENT,
        )
        try:
            checkout = (await self.stripe.retrieve_checkout_session(session_id)).to_dict()
        except ClientError as exc:
            item.error = exc.detail
            return item
        item.stripe_status = checkout.get("status")
        item.payment_status = checkout.get("payment_status")
        paid = item.stripe_status == "complete" and item.payment_status in _PAID
        expired = item.stripe_status == "expired"
        if not (paid or expired):
            return None
        async with self.database.sessionmaker() as session, session.begin():
            if paid:
                await fulfil_paid_checkout(session, checkout)
            else:
                await expire_order(session, checkout)
            status = await session.scalar(select(Order.status).where(Order.id == order_id))
        item.status = str(status)
        wanted = OrderStatus.PAID if paid else OrderStatus.EXPIRED
        moved = item.status == wanted
        item.action = ("fulfilled" if paid else "expired") if moved else "already_settled"
        return item

    async def _reconcile_subscriptions(
        self, report: ReconciliationReport, started_at: datetime
    ) -> None:
        """Live subscriptions whose period ended ``min_age`` ago: ask Stripe what they are now."""
        overdue = int((started_at - self.min_age).timestamp())
        async with self.database.sessionmaker() as session:
            rows = (
                await session.scalars(
                    select(Subscription)
                    .where(
                        Subscription.status.not_in(ENDED_STATUSES),
                        Subscription.current_period_end < overdue,
                    )
                    .order_by(Subscription.current_period_end)
                    .limit(self.batch_size)
                )
            ).all()
        for row in rows:
            try:
                item = await self._reconcile_subscription(row)
            except ServerError as exc:
                logger.warning("reconciliation stopped: Stripe failed", extra={"error": str(exc)})
                report.complete = False
                return
            report.checked += 1
            if item is not None:
                report.items.append(item)
                report.drifted += 1
                report.fixed += item.action == "applied"

    async def _reconcile_subscription(self, row: Subscription) -> ReconciliationItem | None:
        item = ReconciliationItem(
            order_id=row.order_id,
            checkout_session_id=None,
            subscription_id=row.id,
            local_status=row.status,
            stripe_status=None,
            payment_status=None,
            action="error",
            status=row.status,
        )
        try:
            found = await self.stripe.retrieve_subscription(row.id)
        except ClientError as exc:
            item.error = exc.detail
            return item
        raw = found.to_dict(recursive=True, for_json=True)
        items = raw.get("items", {}).get("data") or [{}]
        stripe_state = (
            raw.get("status"),
            items[0].get("current_period_end"),
            bool(raw.get("cancel_at_period_end")),
        )
        item.stripe_status = stripe_state[0]
        if stripe_state == (row.status, row.current_period_end, row.cancel_at_period_end):
            return None
        async with self.database.sessionmaker() as session, session.begin():
            await apply_subscription_snapshot(session, raw, snapshot_created=int(time.time()))
            stored = await session.get(Subscription, row.id, populate_existing=True)
        item.status = stored.status if stored is not None else row.status
        item.action = "applied" if item.status == stripe_state[0] else "already_settled"
        return item

    async def _store(self, report: ReconciliationReport) -> None:
        async with self.database.engine.begin() as connection:
            await connection.execute(
                insert(ReconciliationRun).values(
                    started_at=report.started_at,
                    finished_at=report.finished_at,
                    complete=report.complete,
                    checked=report.checked,
                    drifted=report.drifted,
                    fixed=report.fixed,
                    items=msgspec.to_builtins(report.items),
                )
            )

    async def last_report(self) -> ReconciliationReport | None:
        async with self.database.sessionmaker() as session:
            run = await session.scalar(
                select(ReconciliationRun)
                .order_by(ReconciliationRun.finished_at.desc(), ReconciliationRun.id.desc())
                .limit(1)
            )
        if run is None:
            return None
        return ReconciliationReport(
            checked=run.checked,
            drifted=run.drifted,
            fixed=run.fixed,
            items=msgspec.convert(run.items, list[ReconciliationItem]),
            complete=run.complete,
            started_at=run.started_at,
            finished_at=run.finished_at,
        )
