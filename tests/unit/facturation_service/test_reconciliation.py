"""Reconciliation (flow 10) against the sandbox's real Checkout Sessions: pending orders whose
session was paid or expired are settled through the order-event path and reported."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta

import pytest
from sqlalchemy import insert, select

from facturation_service.app import create_app
from facturation_service.models import Order, utcnow
from facturation_service.reconciliation import Reconciler
from facturation_service.stripe_api import StripeApi
from shared import Database
from tests.support.webhook_app import webhook_settings
from tests.unit.facturation_service.conftest import FakeAuth, running
from tests.unit.facturation_service.sandbox import Sandbox, running_sandbox
from tests.unit.stripe_sandbox.helpers import create_customer, create_session


@pytest.fixture
async def sandbox() -> AsyncIterator[Sandbox]:
    async with running_sandbox() as running_:
        yield running_


@pytest.fixture
async def stripe_api(sandbox: Sandbox) -> AsyncIterator[StripeApi]:
    api = sandbox.stripe_api()
    yield api
    await api.close()


async def pending_order(
    db: Database, stripe_api: StripeApi, order_id: str, *, age: timedelta
) -> str:
    """A pending order with its own Checkout Session in the sandbox; returns the session id."""
    customer = await create_customer(stripe_api.client)
    session = await create_session(
        stripe_api.client, customer.id, metadata={"user_id": "user-1", "order_id": order_id}
    )
    created = utcnow() - age
    async with db.engine.begin() as connection:
        await connection.execute(
            insert(Order).values(
                id=order_id,
                user_id="user-1",
                user_stripe_id=customer.id,
                stripe_checkout_session_id=session.id,
                status="pending_payment",
                amount_total=3000,
                currency="eur",
                lines=[],
                created_at=created,
                updated_at=created,
            )
        )
    return session.id


async def statuses(db: Database) -> dict[str, tuple[str, str | None]]:
    async with db.sessionmaker() as session:
        orders = (await session.scalars(select(Order))).all()
    return {order.id: (order.status, order.stripe_invoice_id) for order in orders}


async def test_paid_and_expired_sessions_settle_their_pending_orders_once_and_are_reported(
    db: Database, sandbox: Sandbox, stripe_api: StripeApi
) -> None:
    hour = timedelta(hours=1)
    paid = await pending_order(db, stripe_api, "ord_paid", age=hour)
    expired = await pending_order(db, stripe_api, "ord_expired", age=hour)
    await pending_order(db, stripe_api, "ord_open", age=hour)
    young = await pending_order(db, stripe_api, "ord_young", age=timedelta(seconds=5))
    for session_id in (paid, young):
        assert (await sandbox.pay(session_id))["payment_status"] == "paid"
    await stripe_api.client.v1.checkout.sessions.expire_async(expired)
    invoice = sandbox.state.checkout_sessions[paid]["invoice"]
    reconciler = Reconciler(db, stripe_api, min_age_seconds=600)

    report = await reconciler.run()
    again = await reconciler.run()
    last = await reconciler.last_report()

    assert (report.checked, report.drifted, report.fixed, report.complete) == (3, 2, 2, True)
    assert {(item.order_id, item.action, item.status) for item in report.items} == {
        ("ord_paid", "fulfilled", "paid"),
        ("ord_expired", "expired", "expired"),
    }
    assert await statuses(db) == {
        "ord_paid": ("paid", invoice),
        "ord_expired": ("expired", None),
        "ord_open": ("pending_payment", None),
        "ord_young": ("pending_payment", None),
    }
    assert (again.checked, again.drifted, again.fixed, again.items) == (1, 0, 0, [])
    assert last == again


async def test_stripe_failing_stops_the_run_and_reports_it_incomplete(
    db: Database, sandbox: Sandbox, stripe_api: StripeApi
) -> None:
    await pending_order(db, stripe_api, "ord_a", age=timedelta(hours=2))
    sandbox.fail("GET", "/v1/checkout/sessions/*")

    report = await Reconciler(db, stripe_api, min_age_seconds=60).run()

    assert (report.checked, report.complete) == (0, False)
    assert (await statuses(db))["ord_a"] == ("pending_payment", None)


async def test_stripe_timing_out_stops_the_run_incomplete_and_the_next_run_settles_the_order(
    db: Database, sandbox: Sandbox, stripe_api: StripeApi
) -> None:
    expired = await pending_order(db, stripe_api, "ord_late", age=timedelta(hours=2))
    await stripe_api.client.v1.checkout.sessions.expire_async(expired)
    sandbox.faults.add("GET", f"/v1/checkout/sessions/{expired}", "timeout", seconds=1.0)
    slow_client = sandbox.stripe_api(timeout_seconds=0.2)
    try:
        stopped = await Reconciler(db, slow_client, min_age_seconds=60).run()
    finally:
        await slow_client.close()
    settled = await Reconciler(db, stripe_api, min_age_seconds=60).run()

    assert (stopped.checked, stopped.complete) == (0, False)
    assert (settled.checked, settled.fixed, settled.complete) == (1, 1, True)
    assert (await statuses(db))["ord_late"] == ("expired", None)


async def test_the_report_route_shows_the_last_run_and_zeros_before_the_first(
    facturation_url: str, db: Database, sandbox: Sandbox, stripe_api: StripeApi
) -> None:
    expired = await pending_order(db, stripe_api, "ord_gone", age=timedelta(hours=2))
    await stripe_api.client.v1.checkout.sessions.expire_async(expired)
    settings = webhook_settings(facturation_url, facturation_reconcile_min_age_seconds=60)
    async with running(create_app(settings, stripe=stripe_api, auth=FakeAuth())) as http:
        before = await http.get("/internal/v1/reconciliation")
        ran = await http.post("/internal/v1/reconciliation")
        after = await http.get("/internal/v1/reconciliation")

    assert before.status_code == 200
    assert (before.json()["checked"], before.json()["finished_at"]) == (0, None)
    assert ran.status_code == 200, ran.text
    assert after.json() == ran.json()
    body = after.json()
    assert (body["checked"], body["drifted"], body["fixed"]) == (1, 1, 1)
    assert body["items"][0]["order_id"] == "ord_gone"
    assert body["items"][0]["action"] == "expired"
