"""Invoice PDFs end to end: the real gateway, auth and facturation processes (Stripe played by the
sandbox), an invoice delivered as Stripe's signed events, and its document downloaded through
``GET /api/v1/billing/invoices/{id}/pdf`` with the user's token."""

from __future__ import annotations

import asyncio
import hashlib
import io
import secrets
import time
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
import pytest_asyncio
from pypdf import PdfReader

from shared import PROBLEM_MEDIA_TYPE
from tests.e2e.conftest import AUTH_ENV, User, new_user
from tests.support import stripe_events
from tests.support.processes import ServiceProcess
from tests.support.stack import Stack, start_stack

pytestmark = [pytest.mark.e2e, pytest.mark.asyncio(loop_scope="module")]

WEBHOOK_SECRET = "whsec_" + secrets.token_hex(24)
STRIPE_SECRET_KEY = "sk_test_e2e_" + secrets.token_hex(8)
SELLER = {
    "SELLER_NAME": "Żółć & Zoë Trading 株式会社",
    "SELLER_ADDRESS": "2 avenue des Tests; 13001 Marseille; France",
    "SELLER_TAX_ID": "FR11222333444",
}


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def stack(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Stack]:
    tmp_path = tmp_path_factory.mktemp("invoice-pdf")
    sandbox = ServiceProcess(
        "stripe_sandbox",
        {
            "SANDBOX_WEBHOOK_URL": "",
            "STRIPE_WEBHOOK_SECRET": WEBHOOK_SECRET,
            "LOG_LEVEL": "WARNING",
        },
        tmp_path,
    )
    await asyncio.to_thread(sandbox.start)
    try:
        async with start_stack(
            tmp_path,
            facturation_url="start",
            auth_env=AUTH_ENV,
            facturation_env={
                "STRIPE_API_BASE": sandbox.url,
                "STRIPE_SECRET_KEY": STRIPE_SECRET_KEY,
                "STRIPE_WEBHOOK_SECRET": WEBHOOK_SECRET,
                "FACTURATION_WEBHOOK_POLL_SECONDS": "0.2",
                **SELLER,
            },
        ) as running:
            yield running
    finally:
        await asyncio.to_thread(sandbox.stop)


async def stripe_customer(http: httpx.AsyncClient, user: User) -> str:
    response = await http.post("/api/v1/billing/customer", headers=user.bearer)
    assert response.status_code in (200, 201), response.text
    return str(response.json()["user_stripe_id"])


async def deliver(http: httpx.AsyncClient, event: dict[str, Any]) -> None:
    body, headers = stripe_events.signed_request(event, WEBHOOK_SECRET)
    response = await http.post("/webhooks/stripe", content=body, headers=headers)
    assert response.status_code == 200, response.text


async def wait_for_status(
    http: httpx.AsyncClient, user: User, invoice_id: str, status: str
) -> None:
    deadline = time.monotonic() + 15
    while True:
        response = await http.get(f"/api/v1/billing/invoices/{invoice_id}", headers=user.bearer)
        if response.status_code == 200 and response.json()["status"] == status:
            return
        assert time.monotonic() < deadline, response.text
        await asyncio.sleep(0.1)


def text_of(document: bytes) -> str:
    return "\n".join(page.extract_text() for page in PdfReader(io.BytesIO(document)).pages)


async def test_the_owner_downloads_the_pdf_through_the_gateway_and_paying_adds_a_document(
    stack: Stack,
) -> None:
    async with httpx.AsyncClient(base_url=stack.url, timeout=30) as http:
        buyer = await new_user(http)
        other = await new_user(http)
        customer = await stripe_customer(http, buyer)
        invoice = stripe_events.invoice(
            "open",
            customer=customer,
            lines=[("Łukasz's onboarding", 12_000, 1), ("株式会社 licence seat", 4_500, 3)],
        )
        invoice.update(
            customer_name="Łukasz Żółć",
            customer_email=buyer.email,
            amount_paid=0,
            amount_remaining=invoice["total"],
        )
        now = int(time.time())
        await deliver(http, stripe_events.event("invoice.finalized", invoice, created=now))
        await wait_for_status(http, buyer, invoice["id"], "open")
        path = f"/api/v1/billing/invoices/{invoice['id']}/pdf"

        while_open = await http.get(path, headers=buyer.bearer)
        again = await http.get(path, headers=buyer.bearer)
        revalidated = await http.get(
            path, headers={**buyer.bearer, "If-None-Match": while_open.headers["etag"]}
        )
        not_signed_in = await http.get(path)
        not_the_owner = await http.get(path, headers=other.bearer)

        assert while_open.status_code == 200, while_open.text
        assert while_open.headers["content-type"] == "application/pdf"
        assert while_open.headers["content-disposition"] == (
            f'attachment; filename="{invoice["number"]}.pdf"'
        )
        assert while_open.headers["etag"] == (f'"{hashlib.sha256(while_open.content).hexdigest()}"')
        assert "x-request-id" in while_open.headers
        text = text_of(while_open.content)
        for expected in (
            invoice["number"],
            "Łukasz Żółć",
            buyer.email,
            "Żółć & Zoë Trading 株式会社",
            "13001 Marseille",
            "Tax ID: FR11222333444",
            "Łukasz's onboarding 1 €120.00 €120.00",
            "株式会社 licence seat 3 €45.00 €135.00",
            "Total €255.00",
            "Amount remaining €255.00",
        ):
            assert expected in text, expected
        assert (again.content, again.headers["etag"]) == (
            while_open.content,
            while_open.headers["etag"],
        )
        assert revalidated.status_code == 304
        assert not_signed_in.status_code == 401
        assert not_the_owner.status_code == 404
        assert not_the_owner.headers["content-type"].startswith(PROBLEM_MEDIA_TYPE)

        paid = {**invoice, "status": "paid", "amount_paid": invoice["total"], "amount_remaining": 0}
        paid["status_transitions"] = {**invoice["status_transitions"], "paid_at": now + 1}
        await deliver(http, stripe_events.event("invoice.paid", paid, created=now + 1))
        await wait_for_status(http, buyer, invoice["id"], "paid")
        once_paid = await http.get(
            path, headers={**buyer.bearer, "If-None-Match": while_open.headers["etag"]}
        )

        assert once_paid.status_code == 200
        assert once_paid.headers["etag"] != while_open.headers["etag"]
        paid_text = text_of(once_paid.content)
        assert "PAID" in paid_text
        assert "Amount remaining €0.00" in paid_text


async def test_through_the_gateway_an_unknown_invoice_is_404_and_a_draft_is_409(
    stack: Stack,
) -> None:
    async with httpx.AsyncClient(base_url=stack.url, timeout=30) as http:
        buyer = await new_user(http)
        customer = await stripe_customer(http, buyer)
        draft = stripe_events.invoice("draft", customer=customer)
        await deliver(http, stripe_events.event("invoice.created", draft))
        await wait_for_status(http, buyer, draft["id"], "draft")

        unknown = await http.get("/api/v1/billing/invoices/in_unknown/pdf", headers=buyer.bearer)
        of_draft = await http.get(
            f"/api/v1/billing/invoices/{draft['id']}/pdf", headers=buyer.bearer
        )

    assert unknown.status_code == 404
    assert of_draft.status_code == 409
    assert of_draft.headers["content-type"].startswith(PROBLEM_MEDIA_TYPE)
    assert "draft without a number" in of_draft.json()["detail"]
