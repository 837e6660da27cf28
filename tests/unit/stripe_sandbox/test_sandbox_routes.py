from __future__ import annotations

import time

import httpx
import pytest
import stripe

from tests.unit.stripe_sandbox.conftest import API_KEY, WEBHOOK_SECRET, WebhookReceiver
from tests.unit.stripe_sandbox.helpers import create_customer, create_session, pay


async def test_stripe_js_is_served_as_javascript(sandbox_url: str) -> None:
    async with httpx.AsyncClient() as http:
        for path in ("/v3/", "/stripe.js"):
            response = await http.get(sandbox_url + path)
            assert response.status_code == 200
            assert response.headers["content-type"].startswith("application/javascript")
            assert "createEmbeddedCheckoutPage" in response.text


async def test_the_browser_may_pay_from_another_origin(sandbox_url: str) -> None:
    async with httpx.AsyncClient() as http:
        response = await http.options(
            f"{sandbox_url}/sandbox/checkout/sessions/cs_test_x/complete",
            headers={
                "Origin": "http://localhost:8000",
                "Access-Control-Request-Method": "POST",
                "Access-Control-Request-Headers": "content-type",
            },
        )
    assert response.status_code in (200, 204)
    assert response.headers["access-control-allow-origin"] in ("*", "http://localhost:8000")


async def test_a_wrong_client_secret_cannot_see_or_pay_the_session(
    client: stripe.StripeClient, sandbox_url: str
) -> None:
    customer = await create_customer(client)
    session = await create_session(client, customer.id)
    async with httpx.AsyncClient(base_url=sandbox_url) as http:
        shown = await http.get(
            f"/sandbox/checkout/sessions/{session.id}", params={"client_secret": "cs_x_secret_y"}
        )
        paid = await http.post(
            f"/sandbox/checkout/sessions/{session.id}/complete",
            json={"client_secret": "cs_x_secret_y", "card_number": "4242424242424242"},
        )
    assert (shown.status_code, paid.status_code) == (404, 404)
    assert paid.json()["error"]["code"] == "resource_missing"
    fetched = await client.v1.checkout.sessions.retrieve_async(session.id)
    assert fetched.status == "open"


async def test_the_form_view_shows_amounts_and_the_filled_in_return_url(
    client: stripe.StripeClient, sandbox_url: str
) -> None:
    customer = await create_customer(client)
    session = await create_session(client, customer.id)
    async with httpx.AsyncClient() as http:
        response = await http.get(
            f"{sandbox_url}/sandbox/checkout/sessions/{session.id}",
            params={"client_secret": session.client_secret},
        )
    view = response.json()
    assert (view["amount_total"], view["currency"], view["status"]) == (3000, "eur", "open")
    assert [line["description"] for line in view["line_items"]] == ["Field guide", "Sticker"]
    assert view["return_url"] == f"http://localhost:8000/?session_id={session.id}"


async def test_a_paid_or_expired_session_cannot_be_paid_again(
    client: stripe.StripeClient, sandbox_url: str
) -> None:
    customer = await create_customer(client)
    paid = await create_session(client, customer.id)
    assert (await pay(sandbox_url, paid)).status_code == 200
    again = await pay(sandbox_url, paid)
    assert again.status_code == 400
    assert again.json()["error"]["code"] == "checkout_session_completed"

    expired = await create_session(client, customer.id)
    await client.v1.checkout.sessions.expire_async(expired.id)
    late = await pay(sandbox_url, expired)
    assert late.json()["error"]["code"] == "checkout_session_expired"


async def test_expiring_delivers_checkout_session_expired(
    client: stripe.StripeClient, receiver: WebhookReceiver
) -> None:
    customer = await create_customer(client)
    session = await create_session(client, customer.id)
    await client.v1.checkout.sessions.expire_async(session.id)
    (received,) = await receiver.wait_for(1)
    event = stripe.Webhook.construct_event(received.body, received.signature, WEBHOOK_SECRET)
    assert event.type == "checkout.session.expired"
    assert event.data.object.id == session.id


@pytest.mark.parametrize(
    ("card", "code"),
    [
        ("4242424242424241", "incorrect_number"),
        ("4000000000009995", "card_declined"),
    ],
)
async def test_other_test_cards_fail_with_stripe_codes(
    client: stripe.StripeClient, sandbox_url: str, card: str, code: str
) -> None:
    customer = await create_customer(client)
    session = await create_session(client, customer.id)
    response = await pay(sandbox_url, session, card=card)
    assert response.status_code == 402
    assert response.json()["error"]["code"] == code


async def test_configured_latency_delays_api_calls(sandbox_url: str) -> None:
    headers = {"Authorization": f"Bearer {API_KEY}"}
    async with httpx.AsyncClient(base_url=sandbox_url, headers=headers) as http:
        assert (await http.post("/sandbox/config", json={"latency_ms": 200})).status_code == 200
        started = time.perf_counter()
        response = await http.get("/v1/invoices")
        elapsed = time.perf_counter() - started
        await http.post("/sandbox/config", json={"latency_ms": 0})
    assert response.status_code == 200
    assert elapsed >= 0.2


async def test_a_failure_rate_outside_zero_to_one_is_refused(sandbox_url: str) -> None:
    async with httpx.AsyncClient() as http:
        response = await http.post(f"{sandbox_url}/sandbox/config", json={"failure_rate": 2})
        config = (await http.get(f"{sandbox_url}/sandbox/config")).json()
    assert response.status_code == 400
    assert response.json()["error"]["param"] == "failure_rate"
    assert config["failure_rate"] == 0.0


async def test_unknown_urls_answer_in_stripe_format_with_a_request_id(sandbox_url: str) -> None:
    async with httpx.AsyncClient() as http:
        response = await http.get(
            f"{sandbox_url}/v1/nothing", headers={"Authorization": f"Bearer {API_KEY}"}
        )
    assert response.status_code == 404
    assert response.headers["request-id"].startswith("req_")
    assert response.json()["error"]["message"] == "Unrecognized request URL (GET: /v1/nothing)."


async def test_the_hosted_invoice_page_shows_the_paid_invoice(
    client: stripe.StripeClient, sandbox_url: str
) -> None:
    customer = await create_customer(client)
    session = await create_session(client, customer.id)
    await pay(sandbox_url, session)
    (invoice,) = (await client.v1.invoices.list_async(params={"customer": customer.id})).data
    assert invoice.hosted_invoice_url is not None
    async with httpx.AsyncClient() as http:
        page = await http.get(invoice.hosted_invoice_url)
    assert page.status_code == 200
    assert f"Invoice {invoice.number}" in page.text
    assert "paid" in page.text
