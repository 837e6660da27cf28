"""``BILLING_MODE`` (flow 11): ``read_only`` refuses writes that reach Stripe and lets everything
else go on; ``off`` also holds events in the journal until the service is back ``on``."""

from __future__ import annotations

import os
import subprocess
import sys
from functools import partial

import msgspec
from litestar import Litestar
from prometheus_client import REGISTRY

from facturation_service.app import create_app
from facturation_service.billing_mode import BillingMode
from facturation_service.settings import FacturationSettings
from facturation_service.stripe_api import StripeApi
from shared import Database
from tests.support import stripe_events
from tests.support.processes import ROOT
from tests.support.sandbox import InProcessSandbox
from tests.support.webhook_app import get_event, get_invoice, wait_until, webhook_settings
from tests.unit.facturation_service.conftest import FakeAuth, as_user, running

CHECKOUT = {"items": [{"product_id": "pro-month", "quantity": 1}]}


async def test_read_only_refuses_stripe_writes_with_503_and_retry_after_and_serves_reads(
    settings: FacturationSettings,
    fake_auth: FakeAuth,
    sandbox: InProcessSandbox,
    stripe_api: StripeApi,
) -> None:
    user_id = fake_auth.add_user()
    read_only = msgspec.structs.replace(settings, billing_mode=BillingMode.READ_ONLY)
    app = create_app(read_only, stripe=stripe_api, auth=fake_auth)
    async with running(app) as http:
        customer = await http.post("/billing/customer", headers=as_user(user_id))
        checkout = await http.post(
            "/billing/checkout-sessions", json=CHECKOUT, headers=as_user(user_id)
        )
        refund = await http.post(
            "/internal/v1/orders/ord_any/refunds", json={}, headers={"Idempotency-Key": "k-1"}
        )
        invoices = await http.get("/billing/invoices", headers=as_user(user_id))
        health = await http.get("/healthz")
        metrics = await http.get("/metrics")

    for refused in (customer, checkout, refund):
        assert refused.status_code == 503
        assert refused.headers["content-type"].startswith("application/problem+json")
        assert refused.headers["retry-after"] == "60"
        assert refused.json()["billing_mode"] == "read_only"
    assert list(sandbox.requests) == []
    assert fake_auth.store_calls == 0
    assert invoices.status_code == 200
    assert health.json() == {"status": "ok", "billing_mode": "read_only"}
    assert 'facturation_billing_mode{mode="read_only"} 1.0' in metrics.text
    assert 'facturation_billing_mode{mode="on"} 0.0' in metrics.text


async def test_on_lets_the_same_writes_through(
    settings: FacturationSettings,
    fake_auth: FakeAuth,
    sandbox: InProcessSandbox,
    app: Litestar,
) -> None:
    user_id = fake_auth.add_user()
    async with running(app) as http:
        checkout = await http.post(
            "/billing/checkout-sessions", json=CHECKOUT, headers=as_user(user_id)
        )
        health = await http.get("/healthz")

    assert checkout.status_code == 201, checkout.text
    assert len(sandbox.posts("/v1/checkout/sessions")) == 1
    assert health.json() == {"status": "ok", "billing_mode": "on"}
    assert REGISTRY.get_sample_value("facturation_billing_mode", {"mode": "on"}) == 1.0


async def test_read_only_still_journals_and_applies_webhooks(
    facturation_url: str, db: Database, stripe_api: StripeApi
) -> None:
    invoice = stripe_events.invoice("paid")
    event = stripe_events.event("invoice.paid", invoice)
    read_only = webhook_settings(facturation_url, billing_mode=BillingMode.READ_ONLY)
    async with running(create_app(read_only, stripe=stripe_api, auth=FakeAuth())) as http:
        body, headers = stripe_events.signed_request(event, stripe_events.WEBHOOK_SECRET)
        delivered = await http.post("/webhooks/stripe", content=body, headers=headers)
        await wait_until(partial(get_event, db, event["id"]), status="processed")

    assert delivered.status_code == 200
    assert await get_invoice(db, invoice["id"]) is not None


async def test_off_journals_every_event_and_applies_them_once_when_back_on(
    facturation_url: str, db: Database, stripe_api: StripeApi
) -> None:
    invoice = stripe_events.invoice("paid")
    events = [
        stripe_events.event("invoice.created", {**invoice, "status": "draft"}, created=100),
        stripe_events.event("invoice.paid", invoice, created=200),
    ]
    off_settings = webhook_settings(facturation_url, billing_mode=BillingMode.OFF)
    off = create_app(off_settings, stripe=stripe_api, auth=FakeAuth())
    async with running(off) as http:
        answers = []
        for event in events:
            body, headers = stripe_events.signed_request(event, stripe_events.WEBHOOK_SECRET)
            answers.append(await http.post("/webhooks/stripe", content=body, headers=headers))
        bad = await http.post(
            "/webhooks/stripe", content=body, headers={"Stripe-Signature": "t=1,v1=00"}
        )
        reconcile = await http.post("/internal/v1/reconciliation")
    held = [await get_event(db, event["id"]) for event in events]
    invoice_while_off = await get_invoice(db, invoice["id"])

    on = create_app(webhook_settings(facturation_url), stripe=stripe_api, auth=FakeAuth())
    async with running(on):
        for event in events:
            await wait_until(partial(get_event, db, event["id"]), status="processed")

    assert [answer.status_code for answer in answers] == [200, 200]
    assert bad.status_code == 400
    assert reconcile.status_code == 503
    assert [(stored.status, stored.attempts) for stored in held if stored] == [("pending", 0)] * 2
    assert invoice_while_off is None
    for event in events:
        stored = await get_event(db, event["id"])
        assert stored is not None
        assert stored.attempts == 1
    applied = await get_invoice(db, invoice["id"])
    assert applied is not None
    assert applied.status == "paid"


def test_an_unknown_billing_mode_stops_start_up_in_one_line_naming_the_variable() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "facturation_service", "serve", "--port", "1"],
        env={
            **os.environ,
            "INTERNAL_TOKEN": "t",
            "FACTURATION_DATABASE_URL": "sqlite:///unused.db",
            "STRIPE_API_BASE": "http://127.0.0.1:9",
            "BILLING_MODE": "maintenance",
        },
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )

    assert result.returncode == 2
    (line,) = result.stderr.strip().splitlines()
    assert line.startswith("facturation: malformed setting BILLING_MODE:")
    assert "maintenance" in line
