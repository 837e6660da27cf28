"""Webhooks end to end, through the real gateway and facturation processes: a checkout created
against the Stripe sandbox, then Stripe's signed events for it, as Stripe would post them."""

from __future__ import annotations

import asyncio
import secrets
import time
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
import pytest_asyncio
from sqlalchemy import select

from facturation_service.models import Order
from shared import INTERNAL_TOKEN_HEADER, RELAY_PATH, Database
from tests.e2e.conftest import AUTH_ENV, User, new_user
from tests.support import stripe_events
from tests.support.processes import ServiceProcess
from tests.support.sandbox_process import facturation_env, sandbox_process
from tests.support.stack import Stack, start_stack

WEBHOOK_SECRET = "whsec_" + secrets.token_hex(24)
STRIPE_SECRET_KEY = "sk_test_e2e_" + secrets.token_hex(8)


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def sandbox(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[ServiceProcess]:
    """The Stripe sandbox, its own webhook delivery off until a test turns it on."""
    async with sandbox_process(tmp_path_factory.mktemp("sandbox"), WEBHOOK_SECRET) as process:
        yield process


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def stack(
    tmp_path_factory: pytest.TempPathFactory, sandbox: ServiceProcess
) -> AsyncIterator[Stack]:
    async with start_stack(
        tmp_path_factory.mktemp("stack"),
        facturation_url="start",
        auth_env=AUTH_ENV,
        facturation_env=facturation_env(sandbox, STRIPE_SECRET_KEY, WEBHOOK_SECRET),
    ) as running:
        yield running


async def post_signed(http: httpx.AsyncClient, event: dict[str, Any]) -> httpx.Response:
    body, headers = stripe_events.signed_request(event, WEBHOOK_SECRET)
    return await http.post("/webhooks/stripe", content=body, headers=headers)


async def checkout(http: httpx.AsyncClient, user: User) -> dict[str, Any]:
    response = await http.post(
        "/api/v1/billing/checkout-sessions",
        json={"items": [{"product_id": "pro-month", "quantity": 1}]},
        headers=user.bearer,
    )
    assert response.status_code in (200, 201), response.text
    return dict(response.json())


async def sandbox_session(sandbox: ServiceProcess, session_id: str) -> dict[str, Any]:
    async with httpx.AsyncClient(base_url=sandbox.url, timeout=10) as http:
        response = await http.get(
            f"/v1/checkout/sessions/{session_id}",
            headers={"Authorization": f"Bearer {STRIPE_SECRET_KEY}"},
        )
    assert response.status_code == 200, response.text
    return dict(response.json())


async def order_of(stack: Stack, session_id: str) -> Order | None:
    assert stack.facturation is not None
    database = Database(stack.facturation.env["FACTURATION_DATABASE_URL"])
    try:
        async with database.sessionmaker() as session:
            query = select(Order).where(Order.stripe_checkout_session_id == session_id)
            return (await session.scalars(query)).one_or_none()
    finally:
        await database.dispose()


@pytest.mark.asyncio(loop_scope="module")
async def test_a_paid_checkout_marks_the_order_paid_and_lists_the_invoice_for_its_user_only(
    stack: Stack, sandbox: ServiceProcess
) -> None:
    async with httpx.AsyncClient(base_url=stack.url, timeout=10) as http:
        buyer = await new_user(http)
        other = await new_user(http)
        created = await checkout(http, buyer)
        real_session = await sandbox_session(sandbox, created["id"])
        customer = real_session["customer"]
        order = await order_of(stack, created["id"])
        assert order is not None
        assert order.status == "pending_payment"

        invoice = stripe_events.invoice(
            "paid", customer=customer, lines=[("Pro plan, one month", 1900, 1)]
        )
        session = stripe_events.checkout_session(
            session_id=created["id"],
            customer=customer,
            invoice_id=invoice["id"],
            amount_total=1900,
            metadata=real_session["metadata"],
        )
        now = int(time.time())
        completed = stripe_events.event("checkout.session.completed", session, created=now)
        paid = stripe_events.event("invoice.paid", invoice, created=now)
        for event in (completed, paid):
            response = await post_signed(http, event)
            assert response.status_code == 200, response.text

        deadline = time.monotonic() + 15
        listed: list[dict[str, Any]] = []
        while time.monotonic() < deadline:
            order = await order_of(stack, created["id"])
            page = await http.get("/api/v1/billing/invoices", headers=buyer.bearer)
            listed = page.json()["data"]
            if order is not None and order.status == "paid" and listed:
                break
            await asyncio.sleep(0.1)

        assert order is not None
        assert (order.status, order.stripe_invoice_id) == ("paid", invoice["id"])
        assert [(item["id"], item["status"], item["amount_paid"]) for item in listed] == [
            (invoice["id"], "paid", 1900)
        ]
        detail = await http.get(f"/api/v1/billing/invoices/{invoice['id']}", headers=buyer.bearer)
        assert detail.status_code == 200
        assert [line["amount"] for line in detail.json()["lines"]] == [1900]

        others_list = await http.get("/api/v1/billing/invoices", headers=other.bearer)
        others_detail = await http.get(
            f"/api/v1/billing/invoices/{invoice['id']}", headers=other.bearer
        )
        assert others_list.json()["data"] == []
        assert others_detail.status_code == 404


@pytest.mark.asyncio(loop_scope="module")
async def test_through_the_gateway_a_tampered_event_is_refused_and_a_duplicate_stored_once(
    stack: Stack,
) -> None:
    event = stripe_events.event("invoice.created", stripe_events.invoice("draft"))
    body, headers = stripe_events.signed_request(event, WEBHOOK_SECRET)
    async with httpx.AsyncClient(base_url=stack.url, timeout=10) as http:
        tampered = await http.post(
            "/webhooks/stripe", content=body.replace(b"draft", b"paid"), headers=headers
        )
        first = await http.post("/webhooks/stripe", content=body, headers=headers)
        again = await http.post("/webhooks/stripe", content=body, headers=headers)
    async with httpx.AsyncClient(base_url=stack.facturation_url, timeout=10) as private:
        journal = await private.get(
            "/internal/v1/webhook-events",
            params={"type": "invoice.created", "limit": 500},
            headers={INTERNAL_TOKEN_HEADER: stack.internal_token},
        )

    assert tampered.status_code == 400
    assert tampered.headers["content-type"].startswith("application/problem+json")
    assert (first.status_code, first.json()["duplicate"]) == (200, False)
    assert (again.status_code, again.json()["duplicate"]) == (200, True)
    assert [entry["id"] for entry in journal.json()["data"]].count(event["id"]) == 1


@pytest.mark.asyncio(loop_scope="module")
async def test_a_checkout_paid_in_the_sandbox_is_delivered_signed_and_applied(
    stack: Stack, sandbox: ServiceProcess
) -> None:
    """The sandbox's own events (its invoice and session objects) through the gateway."""
    async with (
        httpx.AsyncClient(base_url=stack.url, timeout=10) as http,
        httpx.AsyncClient(base_url=sandbox.url, timeout=10) as stripe_sandbox,
    ):
        configured = await stripe_sandbox.post(
            "/sandbox/config", json={"webhook_url": f"{stack.url}/webhooks/stripe"}
        )
        assert configured.status_code == 200, configured.text
        buyer = await new_user(http)
        created = await checkout(http, buyer)
        paid = await stripe_sandbox.post(
            f"/sandbox/checkout/sessions/{created['id']}/complete",
            json={"client_secret": created["client_secret"]},
        )
        assert paid.status_code == 200, paid.text
        invoice_id = paid.json()["invoice"]

        deadline = time.monotonic() + 20
        listed: list[dict[str, Any]] = []
        order = None
        while time.monotonic() < deadline:
            order = await order_of(stack, created["id"])
            page = await http.get("/api/v1/billing/invoices", headers=buyer.bearer)
            listed = page.json()["data"]
            settled = order is not None and order.status == "paid"
            if settled and listed and listed[0]["status"] == "paid":
                break
            await asyncio.sleep(0.2)

    assert order is not None
    assert (order.status, order.stripe_invoice_id) == ("paid", invoice_id)
    assert [(item["id"], item["status"]) for item in listed] == [(invoice_id, "paid")]
    assert listed[0]["amount_paid"] == created["amount_total"]


def _relay_requests(metrics: str) -> float:
    """Relay requests facturation answered 200, as its ``/metrics`` counts them."""
    prefix = (
        'http_requests_total{app_name="facturation",method="POST",'
        f'path="{RELAY_PATH}",status_code="200"}} '
    )
    found = [line.removeprefix(prefix) for line in metrics.splitlines() if line.startswith(prefix)]
    return float(found[0]) if found else 0.0


@pytest.mark.asyncio(loop_scope="module")
async def test_a_burst_of_deliveries_is_relayed_and_each_is_answered_as_if_it_came_alone(
    stack: Stack,
) -> None:
    """60 deliveries at once through the gateway: 20 events, each sent twice, and 20 tampered
    copies. The gateway carries most of them to facturation in relay requests; each still gets
    its own answer: one acknowledgement per event, a duplicate for its copy, a 400 for a forgery."""
    events = [
        stripe_events.event("invoice.created", stripe_events.invoice("draft")) for _ in range(20)
    ]
    signed = [stripe_events.signed_request(event, WEBHOOK_SECRET) for event in events]
    deliveries = [
        *signed,
        *signed,
        *((body.replace(b"draft", b"paid"), headers) for body, headers in signed),
    ]
    private_headers = {INTERNAL_TOKEN_HEADER: stack.internal_token}
    limits = httpx.Limits(max_connections=len(deliveries))
    async with (
        httpx.AsyncClient(base_url=stack.url, timeout=30, limits=limits) as http,
        httpx.AsyncClient(base_url=stack.facturation_url, timeout=10) as private,
    ):
        before = _relay_requests((await private.get("/metrics", headers=private_headers)).text)
        answers = await asyncio.gather(
            *(http.post("/webhooks/stripe", content=b, headers=h) for b, h in deliveries)
        )
        after = _relay_requests((await private.get("/metrics", headers=private_headers)).text)
        journal = await private.get(
            "/internal/v1/webhook-events",
            params={"type": "invoice.created", "limit": 500},
            headers=private_headers,
        )

    assert after > before
    assert [answer.status_code for answer in answers] == [200] * 40 + [400] * 20
    for event, first, copy in zip(events, answers[:20], answers[20:40], strict=True):
        assert {first.json()["id"], copy.json()["id"]} == {event["id"]}
        assert sorted([first.json()["duplicate"], copy.json()["duplicate"]]) == [False, True]
    assert all(
        a.headers["content-type"].startswith("application/problem+json") for a in answers[40:]
    )
    assert len({answer.headers["x-request-id"] for answer in answers}) == len(answers)
    stored = [entry["id"] for entry in journal.json()["data"]]
    assert all(stored.count(event["id"]) == 1 for event in events)
