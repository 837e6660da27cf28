"""Charges, refunds and disputes in the sandbox: stripe-python parses every answer and event,
and the sandbox refuses what Stripe refuses, with Stripe's error codes."""

from __future__ import annotations

import httpx
import pytest
import stripe

from tests.unit.stripe_sandbox.conftest import WEBHOOK_SECRET, WebhookReceiver
from tests.unit.stripe_sandbox.helpers import create_customer, create_session, pay

PAID_EVENT_COUNT = 5


async def paid_intent(client: stripe.StripeClient, sandbox_url: str) -> stripe.PaymentIntent:
    customer = await create_customer(client)
    session = await create_session(client, customer.id)
    paid = await pay(sandbox_url, session)
    return await client.v1.payment_intents.retrieve_async(paid.json()["payment_intent"])


async def test_a_paid_session_has_a_payment_intent_whose_latest_charge_parses_as_a_charge(
    client: stripe.StripeClient, sandbox_url: str
) -> None:
    intent = await paid_intent(client, sandbox_url)

    assert isinstance(intent.latest_charge, str)
    charge = await client.v1.charges.retrieve_async(intent.latest_charge)
    assert isinstance(charge, stripe.Charge)
    assert (charge.amount, charge.amount_refunded, charge.paid, charge.refunded) == (
        3000,
        0,
        True,
        False,
    )
    assert charge.payment_intent == intent.id


async def test_refunds_parse_list_and_retrieve_and_are_delivered_as_signed_events(
    client: stripe.StripeClient, sandbox_url: str, receiver: WebhookReceiver
) -> None:
    intent = await paid_intent(client, sandbox_url)

    partial = await client.v1.refunds.create_async(
        {"payment_intent": intent.id, "amount": 1000, "metadata": {"order_id": "o-1"}}
    )
    rest = await client.v1.refunds.create_async({"payment_intent": intent.id})

    assert isinstance(partial, stripe.Refund)
    assert (partial.amount, partial.status, rest.amount) == (1000, "succeeded", 2000)
    assert partial.metadata is not None
    assert partial.metadata["order_id"] == "o-1"
    listed = await client.v1.refunds.list_async({"payment_intent": intent.id})
    assert [refund.id for refund in listed.data] == [rest.id, partial.id]
    fetched = await client.v1.refunds.retrieve_async(partial.id)
    assert fetched.to_dict() == partial.to_dict()

    received = await receiver.wait_for(PAID_EVENT_COUNT + 4)
    events = [
        stripe.Webhook.construct_event(item.body, item.signature, WEBHOOK_SECRET)
        for item in received[PAID_EVENT_COUNT:]
    ]
    assert [event.type for event in events] == [
        "refund.created",
        "charge.refunded",
        "refund.created",
        "charge.refunded",
    ]
    assert isinstance(events[0].data.object, stripe.Refund)
    last_charge = events[3].data.object
    assert isinstance(last_charge, stripe.Charge)
    assert (last_charge.amount_refunded, last_charge.refunded) == (3000, True)


async def test_more_than_is_left_and_a_charge_already_refunded_are_stripes_errors(
    client: stripe.StripeClient, sandbox_url: str
) -> None:
    intent = await paid_intent(client, sandbox_url)

    with pytest.raises(stripe.InvalidRequestError) as too_much:
        await client.v1.refunds.create_async({"payment_intent": intent.id, "amount": 3001})
    await client.v1.refunds.create_async({"payment_intent": intent.id})
    with pytest.raises(stripe.InvalidRequestError) as twice:
        await client.v1.refunds.create_async({"payment_intent": intent.id, "amount": 1})

    assert (too_much.value.code, too_much.value.param) == ("amount_too_large", "amount")
    assert twice.value.code == "charge_already_refunded"


async def test_an_unknown_payment_intent_cannot_be_refunded(client: stripe.StripeClient) -> None:
    with pytest.raises(stripe.InvalidRequestError) as missing:
        await client.v1.refunds.create_async({"payment_intent": "pi_missing"})

    assert (missing.value.http_status, missing.value.code) == (404, "resource_missing")


@pytest.mark.parametrize("outcome", ["won", "lost"])
async def test_the_dispute_control_sends_created_then_closed_with_the_outcome(
    client: stripe.StripeClient, sandbox_url: str, receiver: WebhookReceiver, outcome: str
) -> None:
    intent = await paid_intent(client, sandbox_url)

    async with httpx.AsyncClient() as http:
        answer = await http.post(
            f"{sandbox_url}/sandbox/charges/{intent.latest_charge}/dispute",
            json={"outcome": outcome},
        )
        again = await http.post(
            f"{sandbox_url}/sandbox/charges/{intent.latest_charge}/dispute",
            json={"outcome": outcome},
        )

    assert answer.status_code == 200
    assert again.status_code == 400
    received = await receiver.wait_for(PAID_EVENT_COUNT + 2)
    events = [
        stripe.Webhook.construct_event(item.body, item.signature, WEBHOOK_SECRET)
        for item in received[PAID_EVENT_COUNT:]
    ]
    assert [event.type for event in events] == ["charge.dispute.created", "charge.dispute.closed"]
    opened, closed = (event.data.object for event in events)
    assert isinstance(opened, stripe.Dispute)
    assert (opened.status, closed.status) == ("needs_response", outcome)
    assert (closed.id, closed.payment_intent) == (answer.json()["id"], intent.id)


async def test_a_dispute_needs_a_known_charge_and_an_outcome(sandbox_url: str) -> None:
    async with httpx.AsyncClient() as http:
        unknown = await http.post(
            f"{sandbox_url}/sandbox/charges/ch_missing/dispute", json={"outcome": "won"}
        )

    assert unknown.status_code == 404
    assert unknown.json()["error"]["code"] == "resource_missing"
