from __future__ import annotations

import json

import httpx
import stripe

from stripe_sandbox import API_VERSION
from tests.unit.stripe_sandbox.conftest import WEBHOOK_SECRET, WebhookReceiver
from tests.unit.stripe_sandbox.helpers import create_customer, create_session, pay

PAID_EVENTS = [
    "checkout.session.completed",
    "invoice.created",
    "invoice.finalized",
    "invoice.paid",
    "invoice.payment_succeeded",
]


async def test_paying_delivers_the_five_events_signed_so_construct_event_verifies_them(
    client: stripe.StripeClient, sandbox_url: str, receiver: WebhookReceiver
) -> None:
    customer = await create_customer(client)
    session = await create_session(client, customer.id)
    await pay(sandbox_url, session)

    received = await receiver.wait_for(5)
    events = [
        stripe.Webhook.construct_event(item.body, item.signature, WEBHOOK_SECRET)
        for item in received
    ]
    assert sorted(event.type for event in events) == sorted(PAID_EVENTS)
    assert {event.api_version for event in events} == {API_VERSION}
    by_type = {event.type: event for event in events}
    completed = by_type["checkout.session.completed"].data.object
    assert isinstance(completed, stripe.checkout.Session)
    assert (completed.id, completed.status, completed.payment_status) == (
        session.id,
        "complete",
        "paid",
    )
    invoice_id = completed.invoice
    statuses = {event_type: by_type[event_type].data.object for event_type in PAID_EVENTS[1:]}
    assert all(isinstance(obj, stripe.Invoice) for obj in statuses.values())
    assert {obj.id for obj in statuses.values()} == {invoice_id}
    # Each event carries the invoice as it was at that step, as Stripe's do.
    assert [statuses[t].status for t in PAID_EVENTS[1:]] == ["draft", "open", "paid", "paid"]
    assert statuses["invoice.created"].number is None
    assert statuses["invoice.paid"].amount_paid == 3000


async def test_a_failing_endpoint_gets_the_event_again_until_it_answers_2xx(
    client: stripe.StripeClient, sandbox_url: str, receiver: WebhookReceiver
) -> None:
    receiver.fail_first = 3
    customer = await create_customer(client)
    session = await create_session(client, customer.id, invoice_creation={"enabled": False})
    await pay(sandbox_url, session)

    (received,) = await receiver.wait_for(1)
    event = stripe.Webhook.construct_event(received.body, received.signature, WEBHOOK_SECRET)
    assert event.type == "checkout.session.completed"
    assert receiver.posts == 4
    async with httpx.AsyncClient() as http:
        listed = (await http.get(f"{sandbox_url}/sandbox/events")).json()["data"]
    assert [(e["type"], e["delivery"]["status"], e["delivery"]["attempts"]) for e in listed] == [
        ("checkout.session.completed", "delivered", 4)
    ]


async def test_a_declined_card_sends_no_event_and_creates_no_invoice(
    client: stripe.StripeClient, sandbox_url: str, receiver: WebhookReceiver
) -> None:
    customer = await create_customer(client)
    session = await create_session(client, customer.id)
    assert (await pay(sandbox_url, session, card="4000000000000002")).status_code == 402
    async with httpx.AsyncClient() as http:
        assert (await http.get(f"{sandbox_url}/sandbox/events")).json()["data"] == []
    assert receiver.posts == 0
    assert (await client.v1.invoices.list_async()).data == []


async def test_every_active_secret_signs_during_rotation() -> None:
    from stripe_sandbox import signature_header

    payload = json.dumps({"id": "evt_1", "object": "event"}).encode()
    header = signature_header(payload, ["whsec_old", "whsec_new"], 1_700_000_000)
    assert header.startswith("t=1700000000,v1=")
    assert header.count("v1=") == 2
    for secret in ("whsec_old", "whsec_new"):
        stripe.WebhookSignature.verify_header(payload.decode(), header, secret, tolerance=None)
