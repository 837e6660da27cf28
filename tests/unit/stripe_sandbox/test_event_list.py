"""``GET /v1/events`` through stripe-python 16: filters, paging and delivery outcome as Stripe has
them, so catch-up runs unchanged against the sandbox and against Stripe."""

from __future__ import annotations

import httpx
import pytest
import stripe

from tests.unit.stripe_sandbox.conftest import WebhookReceiver
from tests.unit.stripe_sandbox.helpers import create_customer, create_session, pay

INVOICE_TYPES = [
    "invoice.created",
    "invoice.finalized",
    "invoice.paid",
    "invoice.payment_succeeded",
]


async def paid_sessions(client: stripe.StripeClient, sandbox_url: str, count: int) -> list[str]:
    customer = await create_customer(client)
    ids = []
    for _ in range(count):
        session = await create_session(client, customer.id)
        assert (await pay(sandbox_url, session)).status_code == 200
        ids.append(session.id)
    return ids


async def every_page(client: stripe.StripeClient, **params: object) -> list[stripe.Event]:
    events: list[stripe.Event] = []
    starting_after: str | None = None
    while True:
        query = dict(params, **({"starting_after": starting_after} if starting_after else {}))
        page = await client.v1.events.list_async(params=query)  # type: ignore[arg-type]
        assert isinstance(page, stripe.ListObject)
        events.extend(page.data)
        if not page.has_more:
            return events
        starting_after = page.data[-1].id


async def test_events_of_the_given_types_page_newest_first_each_exactly_once(
    client: stripe.StripeClient, sandbox_url: str
) -> None:
    sessions = await paid_sessions(client, sandbox_url, 3)

    listed = await every_page(client, types=["checkout.session.completed", "invoice.paid"], limit=2)

    assert all(isinstance(event, stripe.Event) for event in listed)
    assert len(listed) == len({event.id for event in listed}) == 6
    assert {event.type for event in listed} == {"checkout.session.completed", "invoice.paid"}
    completed = [event for event in listed if event.type == "checkout.session.completed"]
    assert [event.data.object["id"] for event in completed] == sessions[::-1]
    assert [event.created for event in listed] == sorted(
        (event.created for event in listed), reverse=True
    )


async def test_a_wildcard_type_and_the_created_range_filter_events(
    client: stripe.StripeClient, sandbox_url: str
) -> None:
    await paid_sessions(client, sandbox_url, 1)
    everything = await every_page(client, limit=100)
    newest = everything[0].created

    invoices = await every_page(client, type="invoice.*")
    future = await every_page(client, created={"gt": newest})
    window = await every_page(client, created={"gte": newest - 60, "lte": newest})

    assert sorted(event.type for event in invoices) == sorted(INVOICE_TYPES)
    assert future == []
    assert {event.id for event in window} == {event.id for event in everything}


async def test_ending_before_returns_the_newer_events_next_to_the_cursor(
    client: stripe.StripeClient, sandbox_url: str
) -> None:
    await paid_sessions(client, sandbox_url, 2)
    everything = await every_page(client, limit=100)
    assert len(everything) == 10

    page = await client.v1.events.list_async(params={"ending_before": everything[5].id, "limit": 3})

    assert [event.id for event in page.data] == [event.id for event in everything[2:5]]
    assert page.has_more


async def test_delivery_success_tells_delivered_events_from_those_that_never_arrived(
    client: stripe.StripeClient, sandbox_url: str, receiver: WebhookReceiver
) -> None:
    await paid_sessions(client, sandbox_url, 1)
    await receiver.wait_for(5)
    async with httpx.AsyncClient(base_url=sandbox_url) as http:
        assert (await http.post("/sandbox/config", json={"webhook_url": ""})).status_code == 200
    await paid_sessions(client, sandbox_url, 1)

    delivered = await every_page(client, delivery_success="true")
    undelivered = await every_page(client, delivery_success="false")

    assert len(delivered) == len(undelivered) == 5
    assert {event.pending_webhooks for event in delivered} == {0}
    assert {event.pending_webhooks for event in undelivered} == {1}
    assert min(event.created for event in undelivered) >= max(e.created for e in delivered)


@pytest.mark.parametrize(
    ("params", "param"),
    [
        ({"types": [f"invoice.t{i}" for i in range(21)]}, "types"),
        ({"created": {"after": 1}}, "created[after]"),
        ({"starting_after": "evt_missing"}, "starting_after"),
        ({"limit": 101}, "limit"),
        ({"colour": "blue"}, "colour"),
    ],
)
async def test_bad_list_parameters_raise_invalid_request_error_naming_the_param(
    client: stripe.StripeClient, params: dict[str, object], param: str
) -> None:
    with pytest.raises(stripe.InvalidRequestError) as raised:
        await client.v1.events.list_async(params=params)  # type: ignore[arg-type]
    assert raised.value.param == param


async def test_starting_after_and_ending_before_together_are_refused(
    client: stripe.StripeClient, sandbox_url: str
) -> None:
    await paid_sessions(client, sandbox_url, 1)
    (first,) = (await client.v1.events.list_async(params={"limit": 1})).data

    with pytest.raises(stripe.InvalidRequestError):
        await client.v1.events.list_async(
            params={"starting_after": first.id, "ending_before": first.id}
        )
