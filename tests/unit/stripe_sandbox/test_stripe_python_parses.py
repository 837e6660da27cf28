"""stripe-python 16, unchanged, against the sandbox: every response the facturation service uses
parses into the SDK's typed objects, and every error raises the SDK's error class."""

from __future__ import annotations

import httpx
import pytest
import stripe

from tests.unit.stripe_sandbox.conftest import WEBHOOK_SECRET, WebhookReceiver
from tests.unit.stripe_sandbox.helpers import (
    create_customer,
    create_session,
    create_subscription_session,
    pay,
)


async def test_customer_create_retrieve_update_parse_as_customer(
    client: stripe.StripeClient,
) -> None:
    customer = await create_customer(client)
    assert isinstance(customer, stripe.Customer)
    assert customer.id.startswith("cus_")
    assert customer.metadata is not None
    assert customer.metadata["user_id"] == "user-1"
    assert customer.email == "user-1@example.com"

    fetched = await client.v1.customers.retrieve_async(customer.id)
    assert isinstance(fetched, stripe.Customer)
    assert fetched.to_dict() == customer.to_dict()

    updated = await client.v1.customers.update_async(
        customer.id, params={"name": "Ada L.", "metadata": {"plan": "pro"}}
    )
    assert updated.name == "Ada L."
    assert updated.metadata is not None
    assert updated.metadata.to_dict() == {"user_id": "user-1", "plan": "pro"}


async def test_checkout_session_parses_with_embedded_client_secret(
    client: stripe.StripeClient,
) -> None:
    customer = await create_customer(client)
    session = await create_session(client, customer.id)
    assert isinstance(session, stripe.checkout.Session)
    assert session.id.startswith("cs_test_")
    assert session.client_secret is not None
    assert session.client_secret.startswith(f"{session.id}_secret_")
    assert (session.ui_mode, session.mode, session.status) == ("embedded_page", "payment", "open")
    assert (session.amount_total, session.currency) == (3000, "eur")
    assert session.customer == customer.id
    assert session.invoice_creation is not None
    assert session.invoice_creation.enabled
    assert session.return_url is not None
    assert "{CHECKOUT_SESSION_ID}" in session.return_url

    fetched = await client.v1.checkout.sessions.retrieve_async(
        session.id, params={"expand": ["line_items"]}
    )
    assert fetched.line_items is not None
    items = fetched.line_items.data
    assert [(item.description, item.quantity, item.amount_total) for item in items] == [
        ("Field guide", 2, 2500),
        ("Sticker", 1, 500),
    ]
    assert isinstance(items[0], stripe.LineItem)


async def test_paid_session_links_a_paid_invoice_that_lists_and_retrieves_typed(
    client: stripe.StripeClient, sandbox_url: str
) -> None:
    customer = await create_customer(client)
    session = await create_session(client, customer.id)
    assert (await pay(sandbox_url, session)).status_code == 200

    paid = await client.v1.checkout.sessions.retrieve_async(
        session.id, params={"expand": ["invoice", "payment_intent"]}
    )
    assert (paid.status, paid.payment_status) == ("complete", "paid")
    assert isinstance(paid.invoice, stripe.Invoice)
    assert isinstance(paid.payment_intent, stripe.PaymentIntent)
    assert paid.payment_intent.status == "succeeded"

    invoices = await client.v1.invoices.list_async(params={"customer": customer.id})
    assert isinstance(invoices, stripe.ListObject)
    (invoice,) = invoices.data
    assert isinstance(invoice, stripe.Invoice)
    assert invoice.id.startswith("in_")
    assert (invoice.status, invoice.amount_paid, invoice.amount_remaining) == ("paid", 3000, 0)
    assert invoice.number is not None
    assert invoice.hosted_invoice_url is not None
    assert invoice.status_transitions.paid_at is not None
    assert invoice.metadata is not None
    assert invoice.metadata.to_dict() == {"order_id": "o-1"}
    line = invoice.lines.data[0]
    assert isinstance(line, stripe.InvoiceLineItem)
    assert line.id.startswith("il_")
    assert line.amount == 2500
    assert line.quantity == 2

    fetched = await client.v1.invoices.retrieve_async(invoice.id)
    assert fetched.to_dict() == invoice.to_dict()
    others = await client.v1.invoices.list_async(params={"customer": "cus_someoneelse"})
    assert others.data == []


async def test_expire_moves_an_open_session_to_expired_and_refuses_twice(
    client: stripe.StripeClient,
) -> None:
    customer = await create_customer(client)
    session = await create_session(client, customer.id)
    expired = await client.v1.checkout.sessions.expire_async(session.id)
    assert expired.status == "expired"
    with pytest.raises(stripe.InvalidRequestError):
        await client.v1.checkout.sessions.expire_async(session.id)


async def test_unknown_object_raises_invalid_request_error_with_code_and_request_id(
    client: stripe.StripeClient,
) -> None:
    with pytest.raises(stripe.InvalidRequestError) as caught:
        await client.v1.customers.retrieve_async("cus_missing")
    error = caught.value
    assert (error.http_status, error.code, error.param) == (404, "resource_missing", "id")
    assert error.user_message == "No such customer: 'cus_missing'"
    assert error.request_id is not None
    assert error.request_id.startswith("req_")


@pytest.mark.parametrize(
    ("params", "param"),
    [
        ({"mode": "payment", "return_url": "http://x/"}, "ui_mode"),
        ({"ui_mode": "hosted_page", "mode": "payment"}, "ui_mode"),
        ({"ui_mode": "embedded_page", "return_url": "http://x/"}, "mode"),
        ({"ui_mode": "embedded_page", "mode": "payment"}, "return_url"),
        ({"ui_mode": "embedded_page", "mode": "payment", "return_url": "http://x/"}, "line_items"),
        (
            {
                "ui_mode": "embedded_page",
                "mode": "payment",
                "return_url": "http://x/",
                "line_items": [{"quantity": 1, "price_data": {"currency": "eur"}}],
            },
            "line_items[0][price_data][unit_amount]",
        ),
        (
            {
                "ui_mode": "embedded_page",
                "mode": "payment",
                "return_url": "http://x/",
                "customer": "cus_nobody",
                "line_items": [
                    {
                        "quantity": 1,
                        "price_data": {
                            "currency": "eur",
                            "unit_amount": 100,
                            "product_data": {"name": "A"},
                        },
                    }
                ],
            },
            "customer",
        ),
        ({"ui_mode": "embedded_page", "not_a_stripe_param": "1"}, "not_a_stripe_param"),
    ],
)
async def test_bad_checkout_parameters_raise_invalid_request_error_naming_the_param(
    client: stripe.StripeClient, params: dict[str, object], param: str
) -> None:
    with pytest.raises(stripe.InvalidRequestError) as caught:
        await client.v1.checkout.sessions.create_async(params=params)  # type: ignore[arg-type]
    assert caught.value.param == param


async def test_a_key_that_is_not_a_test_secret_key_raises_authentication_error(
    sandbox_url: str,
) -> None:
    http_client = stripe.HTTPXClient()
    live = stripe.StripeClient(
        "sk_live_not_here_1234", http_client=http_client, base_addresses={"api": sandbox_url}
    )
    with pytest.raises(stripe.AuthenticationError):
        await live.v1.customers.retrieve_async("cus_x")
    await http_client.close_async()  # type: ignore[no-untyped-call]
    async with httpx.AsyncClient() as http:
        response = await http.get(f"{sandbox_url}/v1/customers/cus_x")
    assert response.status_code == 401
    assert response.json()["error"]["type"] == "invalid_request_error"


async def test_injected_failures_raise_api_error_and_are_not_saved_for_replay(
    client: stripe.StripeClient, sandbox_url: str
) -> None:
    async with httpx.AsyncClient() as http:
        await http.post(f"{sandbox_url}/sandbox/config", json={"failure_rate": 1})
    with pytest.raises(stripe.APIError) as caught:
        await client.v1.customers.create_async(
            params={"email": "f@example.com"}, options={"idempotency_key": "retry-me"}
        )
    assert caught.value.http_status == 500
    async with httpx.AsyncClient() as http:
        await http.post(f"{sandbox_url}/sandbox/config", json={"failure_rate": 0})
    customer = await client.v1.customers.create_async(
        params={"email": "f@example.com"}, options={"idempotency_key": "retry-me"}
    )
    assert customer.email == "f@example.com"


async def test_declined_card_is_a_card_error_and_leaves_the_session_open(
    client: stripe.StripeClient, sandbox_url: str
) -> None:
    customer = await create_customer(client)
    session = await create_session(client, customer.id)
    response = await pay(sandbox_url, session, card="4000000000000002")
    assert response.status_code == 402
    assert response.headers["request-id"].startswith("req_")
    error = response.json()["error"]
    assert (error["type"], error["code"], error["decline_code"]) == (
        "card_error",
        "card_declined",
        "generic_decline",
    )
    assert error["message"] == "Your card was declined."
    fetched = await client.v1.checkout.sessions.retrieve_async(session.id)
    assert (fetched.status, fetched.payment_status, fetched.invoice) == ("open", "unpaid", None)
    assert (await client.v1.invoices.list_async(params={"customer": customer.id})).data == []


async def test_subscriptions_portal_sessions_and_their_events_parse_typed(
    client: stripe.StripeClient, sandbox_url: str, receiver: WebhookReceiver
) -> None:
    customer = await create_customer(client)
    session = await create_subscription_session(client, customer.id)
    assert (await pay(sandbox_url, session)).status_code == 200
    paid = await client.v1.checkout.sessions.retrieve_async(
        session.id, params={"expand": ["subscription", "invoice"]}
    )
    assert isinstance(paid.subscription, stripe.Subscription)
    assert isinstance(paid.invoice, stripe.Invoice)
    sub = await client.v1.subscriptions.retrieve_async(paid.subscription.id)
    assert isinstance(sub, stripe.Subscription)
    assert (sub.object, sub.status, sub.collection_method, sub.currency) == (
        "subscription",
        "active",
        "charge_automatically",
        "eur",
    )
    assert (sub.cancel_at, sub.canceled_at, sub.ended_at) == (None, None, None)
    assert sub.latest_invoice == paid.invoice.id
    item = sub["items"].data[0]
    assert isinstance(item, stripe.SubscriptionItem)
    assert isinstance(item.price, stripe.Price)
    assert item.price.recurring is not None
    assert (item.price.type, item.price.recurring.interval, item.quantity) == (
        "recurring",
        "month",
        1,
    )
    assert item.current_period_end > item.current_period_start
    assert "current_period_end" not in sub  # API 2026-10-28: the period lives on the items

    listed = await client.v1.subscriptions.list_async(
        params={"customer": customer.id, "status": "all"}
    )
    assert isinstance(listed, stripe.ListObject)
    assert [type(found) for found in listed.data] == [stripe.Subscription]

    portal = await client.v1.billing_portal.sessions.create_async(
        params={"customer": customer.id, "return_url": "http://localhost:8000/"}
    )
    assert isinstance(portal, stripe.billing_portal.Session)
    assert (portal.object, portal.customer, portal.return_url) == (
        "billing_portal.session",
        customer.id,
        "http://localhost:8000/",
    )

    canceled = await client.v1.subscriptions.cancel_async(sub.id)
    assert isinstance(canceled, stripe.Subscription)
    received = await receiver.wait_for(8)
    events = [
        stripe.Webhook.construct_event(item.body, item.signature, WEBHOOK_SECRET)
        for item in received
    ]
    subscription_events = [event for event in events if event.type.startswith("customer.")]
    assert subscription_events
    for event in subscription_events:
        assert isinstance(event.data.object, stripe.Subscription)
        assert event.data.object.id == sub.id
