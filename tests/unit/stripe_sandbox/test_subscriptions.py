"""Subscriptions in the sandbox, as SUBSCRIPTIONS_CONTRACT.md describes them: started by a paid
subscription-mode session, renewed or ended by the sandbox clock, canceled through the API."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest
import stripe

from tests.unit.stripe_sandbox.conftest import WebhookReceiver
from tests.unit.stripe_sandbox.helpers import create_customer, create_subscription_session, pay

DAY = 86400
FIRST_EVENTS = [
    "customer.subscription.created",
    "invoice.created",
    "invoice.finalized",
    "invoice.paid",
    "invoice.payment_succeeded",
    "customer.subscription.updated",
    "checkout.session.completed",
]
RENEWAL_EVENTS = [
    "invoice.created",
    "invoice.finalized",
    "invoice.paid",
    "invoice.payment_succeeded",
    "customer.subscription.updated",
]


async def _subscribe(
    client: stripe.StripeClient, sandbox_url: str, **extra: Any
) -> tuple[stripe.checkout.Session, stripe.Subscription]:
    customer = await create_customer(client)
    session = await create_subscription_session(client, customer.id, **extra)
    assert (await pay(sandbox_url, session)).status_code == 200
    paid = await client.v1.checkout.sessions.retrieve_async(session.id)
    assert isinstance(paid.subscription, str)
    return paid, await client.v1.subscriptions.retrieve_async(paid.subscription)


async def _events(sandbox_url: str) -> list[dict[str, Any]]:
    async with httpx.AsyncClient() as http:
        data: list[dict[str, Any]] = (await http.get(f"{sandbox_url}/sandbox/events")).json()[
            "data"
        ]
    return data


async def _advance(sandbox_url: str, seconds: int) -> dict[str, Any]:
    async with httpx.AsyncClient() as http:
        response = await http.post(
            f"{sandbox_url}/sandbox/clock/advance", json={"seconds": seconds}
        )
    assert response.status_code == 200, response.text
    answer: dict[str, Any] = response.json()
    return answer


async def _set_card(sandbox_url: str, customer_id: str, number: str) -> httpx.Response:
    async with httpx.AsyncClient() as http:
        return await http.post(
            f"{sandbox_url}/sandbox/customers/{customer_id}/card", json={"card_number": number}
        )


def _period(sub: stripe.Subscription) -> tuple[int, int]:
    item = sub["items"].data[0]
    return item.current_period_start, item.current_period_end


async def test_a_subscription_session_is_open_without_a_subscription_until_paid(
    client: stripe.StripeClient,
) -> None:
    customer = await create_customer(client)
    session = await create_subscription_session(client, customer.id)
    assert isinstance(session, stripe.checkout.Session)
    assert (session.mode, session.status, session.subscription) == ("subscription", "open", None)
    assert session.invoice_creation is None
    assert session.amount_total == 990
    fetched = await client.v1.checkout.sessions.retrieve_async(
        session.id, params={"expand": ["line_items"]}
    )
    assert fetched.line_items is not None
    price = fetched.line_items.data[0].price
    assert price is not None
    assert price.type == "recurring"
    assert price.recurring is not None
    assert (price.recurring.interval, price.recurring.interval_count) == ("month", 1)


async def test_invoice_creation_in_subscription_mode_is_refused_like_stripe(
    client: stripe.StripeClient,
) -> None:
    customer = await create_customer(client)
    with pytest.raises(stripe.InvalidRequestError) as raised:
        await create_subscription_session(client, customer.id, invoice_creation={"enabled": True})
    assert raised.value.http_status == 400
    assert raised.value.param == "invoice_creation"


async def test_a_recurring_price_needs_subscription_mode_and_a_known_interval(
    client: stripe.StripeClient,
) -> None:
    customer = await create_customer(client)
    with pytest.raises(stripe.InvalidRequestError) as raised:
        await create_subscription_session(client, customer.id, mode="payment")
    assert raised.value.http_status == 400
    with pytest.raises(stripe.InvalidRequestError) as bad_interval:
        await create_subscription_session(client, customer.id, interval="fortnight")
    assert bad_interval.value.param == "line_items[0][price_data][recurring][interval]"


async def test_an_open_subscription_session_expires_and_can_then_not_be_paid(
    client: stripe.StripeClient, sandbox_url: str
) -> None:
    customer = await create_customer(client)
    session = await create_subscription_session(client, customer.id)
    expired = await client.v1.checkout.sessions.expire_async(session.id)
    assert (expired.status, expired.subscription) == ("expired", None)
    assert (await pay(sandbox_url, session)).status_code == 400
    listed = await client.v1.subscriptions.list_async(
        params={"customer": customer.id, "status": "all"}
    )
    assert listed.data == []


async def test_paying_a_subscription_session_starts_it_with_a_paid_first_invoice_in_order(
    client: stripe.StripeClient, sandbox_url: str, receiver: WebhookReceiver
) -> None:
    session, sub = await _subscribe(client, sandbox_url)
    assert isinstance(sub, stripe.Subscription)
    assert (sub.status, sub.cancel_at_period_end, sub.customer) == (
        "active",
        False,
        session.customer,
    )
    assert sub.metadata.to_dict() == {"user_id": "user-1", "order_id": "o-9", "product_id": "pro"}
    start, end = _period(sub)
    assert start == sub.start_date == sub.created
    assert 28 * DAY <= end - start <= 31 * DAY
    assert (session.status, session.payment_status, session.invoice) == (
        "complete",
        "paid",
        sub.latest_invoice,
    )

    invoice = await client.v1.invoices.retrieve_async(str(sub.latest_invoice))
    assert (invoice.status, invoice.billing_reason, invoice.amount_paid) == (
        "paid",
        "subscription_create",
        990,
    )
    assert invoice.parent is not None
    assert invoice.parent.type == "subscription_details"
    assert invoice.parent.subscription_details is not None
    assert invoice.parent.subscription_details.subscription == sub.id
    assert invoice.parent.subscription_details.metadata is not None
    assert invoice.parent.subscription_details.metadata["order_id"] == "o-9"
    line = invoice.lines.data[0]
    assert (line.period.start, line.period.end) == (start, end)

    events = await _events(sandbox_url)
    assert [event["type"] for event in events] == FIRST_EVENTS
    received = await receiver.wait_for(len(FIRST_EVENTS))
    bodies = [json.loads(item.body) for item in received]
    created = next(b for b in bodies if b["type"] == "customer.subscription.created")
    updated = next(b for b in bodies if b["type"] == "customer.subscription.updated")
    completed = next(b for b in bodies if b["type"] == "checkout.session.completed")
    assert created["data"]["object"]["status"] == "incomplete"
    assert updated["data"]["object"]["status"] == "active"
    assert updated["data"]["previous_attributes"] == {"status": "incomplete"}
    assert "previous_attributes" not in created["data"]
    assert completed["data"]["object"]["subscription"] == sub.id
    assert completed["data"]["object"]["invoice"] == invoice.id


@pytest.mark.parametrize("card", ["4000000000000002", "4000000000000341"])
async def test_a_declined_card_starts_no_subscription(
    client: stripe.StripeClient, sandbox_url: str, card: str
) -> None:
    customer = await create_customer(client)
    session = await create_subscription_session(client, customer.id)
    declined = await pay(sandbox_url, session, card=card)
    assert declined.status_code == 402
    assert declined.json()["error"]["code"] == "card_declined"
    assert (await client.v1.checkout.sessions.retrieve_async(session.id)).status == "open"
    listed = await client.v1.subscriptions.list_async(
        params={"customer": customer.id, "status": "all"}
    )
    assert listed.data == []
    assert await _events(sandbox_url) == []


async def test_cancel_at_period_end_then_resume_then_delete(
    client: stripe.StripeClient, sandbox_url: str
) -> None:
    _, sub = await _subscribe(client, sandbox_url)
    _, end = _period(sub)
    canceling = await client.v1.subscriptions.update_async(
        sub.id, params={"cancel_at_period_end": True}
    )
    assert (canceling.status, canceling.cancel_at_period_end, canceling.cancel_at) == (
        "active",
        True,
        end,
    )
    resumed = await client.v1.subscriptions.update_async(
        sub.id, params={"cancel_at_period_end": False}
    )
    assert (resumed.cancel_at_period_end, resumed.cancel_at, resumed.canceled_at) == (
        False,
        None,
        None,
    )
    canceled = await client.v1.subscriptions.cancel_async(sub.id)
    assert canceled.status == "canceled"
    assert canceled.canceled_at is not None
    assert canceled.ended_at == canceled.canceled_at
    types = [event["type"] for event in await _events(sandbox_url)][len(FIRST_EVENTS) :]
    assert types == [
        "customer.subscription.updated",
        "customer.subscription.updated",
        "customer.subscription.deleted",
    ]
    listed = await client.v1.events.list_async(
        params={"type": "customer.subscription.updated", "limit": 2}
    )
    resume_event, cancel_event = listed.data
    assert cancel_event.data.previous_attributes is not None
    assert cancel_event.data.previous_attributes.to_dict() == {
        "cancel_at_period_end": False,
        "cancel_at": None,
        "canceled_at": None,
        "cancellation_details": {"comment": None, "feedback": None, "reason": None},
    }
    assert resume_event.data.previous_attributes is not None
    assert resume_event.data.previous_attributes["cancel_at_period_end"] is True

    with pytest.raises(stripe.InvalidRequestError) as again:
        await client.v1.subscriptions.cancel_async(sub.id)
    assert again.value.http_status == 400
    with pytest.raises(stripe.InvalidRequestError) as update:
        await client.v1.subscriptions.update_async(sub.id, params={"cancel_at_period_end": True})
    assert update.value.http_status == 400


async def test_unknown_subscriptions_and_customers_are_404_in_stripes_format(
    client: stripe.StripeClient, sandbox_url: str
) -> None:
    for call in (
        client.v1.subscriptions.retrieve_async("sub_missing"),
        client.v1.subscriptions.update_async("sub_missing", params={"cancel_at_period_end": True}),
        client.v1.subscriptions.cancel_async("sub_missing"),
        client.v1.billing_portal.sessions.create_async(params={"customer": "cus_missing"}),
    ):
        with pytest.raises(stripe.InvalidRequestError) as raised:
            await call
        assert raised.value.http_status == 404
        assert raised.value.code == "resource_missing"
    response = await _set_card(sandbox_url, "cus_missing", "4242424242424242")
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "resource_missing"


async def test_subscriptions_list_by_customer_and_status_and_page(
    client: stripe.StripeClient, sandbox_url: str
) -> None:
    _, first = await _subscribe(client, sandbox_url)
    _, second = await _subscribe(client, sandbox_url)
    await client.v1.subscriptions.cancel_async(first.id)

    default = await client.v1.subscriptions.list_async()
    assert [sub.id for sub in default.data] == [second.id]
    every = await client.v1.subscriptions.list_async(params={"status": "all", "limit": 1})
    assert ([sub.id for sub in every.data], every.has_more) == ([second.id], True)
    rest = await client.v1.subscriptions.list_async(
        params={"status": "all", "starting_after": second.id}
    )
    assert ([sub.id for sub in rest.data], rest.has_more) == ([first.id], False)
    mine = await client.v1.subscriptions.list_async(
        params={"customer": str(first.customer), "status": "canceled"}
    )
    assert [sub.id for sub in mine.data] == [first.id]


async def test_advancing_past_the_period_end_renews_with_a_paid_cycle_invoice(
    client: stripe.StripeClient, sandbox_url: str
) -> None:
    _, sub = await _subscribe(client, sandbox_url)
    start, end = _period(sub)
    answer = await _advance(sandbox_url, end - start + 60)
    assert (answer["renewed"], answer["ended"], answer["failed"]) == ([sub.id], [], [])

    renewed = await client.v1.subscriptions.retrieve_async(sub.id)
    new_start, new_end = _period(renewed)
    assert new_start == end
    assert 28 * DAY <= new_end - new_start <= 31 * DAY
    assert renewed.status == "active"
    assert renewed.latest_invoice != sub.latest_invoice
    invoice = await client.v1.invoices.retrieve_async(str(renewed.latest_invoice))
    assert (invoice.status, invoice.billing_reason, invoice.created) == (
        "paid",
        "subscription_cycle",
        end,
    )
    line = invoice.lines.data[0]
    assert (line.period.start, line.period.end) == (new_start, new_end)
    events = (await _events(sandbox_url))[len(FIRST_EVENTS) :]
    assert [event["type"] for event in events] == RENEWAL_EVENTS
    assert {event["created"] for event in events} == {end}


async def test_a_far_advance_renews_every_period_until_the_end_is_in_the_future(
    client: stripe.StripeClient, sandbox_url: str
) -> None:
    _, sub = await _subscribe(client, sandbox_url, interval="week")
    start, _ = _period(sub)
    answer = await _advance(sandbox_url, 3 * 7 * DAY + 60)
    assert answer["renewed"] == [sub.id]
    assert answer["now"] >= start + 3 * 7 * DAY + 60
    renewed = await client.v1.subscriptions.retrieve_async(sub.id)
    assert _period(renewed) == (start + 3 * 7 * DAY, start + 4 * 7 * DAY)
    cycles = await client.v1.invoices.list_async(params={"subscription": sub.id})
    reasons = [invoice.billing_reason for invoice in cycles.data]
    assert reasons == ["subscription_cycle"] * 3 + ["subscription_create"]
    assert [invoice.created for invoice in cycles.data] == [
        start + weeks * 7 * DAY for weeks in (3, 2, 1, 0)
    ]


async def test_cancel_at_period_end_then_advance_ends_the_subscription(
    client: stripe.StripeClient, sandbox_url: str
) -> None:
    _, sub = await _subscribe(client, sandbox_url)
    start, end = _period(sub)
    await client.v1.subscriptions.update_async(sub.id, params={"cancel_at_period_end": True})
    answer = await _advance(sandbox_url, end - start)
    assert (answer["renewed"], answer["ended"], answer["failed"]) == ([], [sub.id], [])
    ended = await client.v1.subscriptions.retrieve_async(sub.id)
    assert (ended.status, ended.ended_at) == ("canceled", end)
    types = [event["type"] for event in await _events(sandbox_url)]
    assert types[-1] == "customer.subscription.deleted"
    assert "invoice.created" not in types[len(FIRST_EVENTS) :]


async def test_a_failing_card_makes_the_renewal_fail_and_a_fixed_card_recovers(
    client: stripe.StripeClient, sandbox_url: str
) -> None:
    _, sub = await _subscribe(client, sandbox_url)
    start, end = _period(sub)
    customer_id = str(sub.customer)
    assert (await _set_card(sandbox_url, customer_id, "4000 0000 0000 0341")).status_code == 200

    answer = await _advance(sandbox_url, end - start)
    assert (answer["renewed"], answer["failed"]) == ([], [sub.id])
    past_due = await client.v1.subscriptions.retrieve_async(sub.id)
    assert past_due.status == "past_due"
    invoice = await client.v1.invoices.retrieve_async(str(past_due.latest_invoice))
    assert (invoice.status, invoice.attempt_count, invoice.amount_paid) == ("open", 1, 0)
    events = (await _events(sandbox_url))[len(FIRST_EVENTS) :]
    assert [event["type"] for event in events] == [
        "invoice.created",
        "invoice.finalized",
        "invoice.payment_failed",
        "customer.subscription.updated",
    ]

    assert (await _set_card(sandbox_url, customer_id, "4242424242424242")).status_code == 200
    _, next_end = _period(past_due)
    answer = await _advance(sandbox_url, next_end - end)
    assert answer["renewed"] == [sub.id]
    recovered = await client.v1.subscriptions.retrieve_async(sub.id)
    assert recovered.status == "active"


async def test_the_card_control_refuses_a_bad_number(
    client: stripe.StripeClient, sandbox_url: str
) -> None:
    customer = await create_customer(client)
    response = await _set_card(sandbox_url, customer.id, "4242424242424241")
    assert response.status_code == 400
    assert response.json()["error"]["type"] == "invalid_request_error"
    assert response.json()["error"]["param"] == "card_number"


async def test_a_bad_advance_is_400_and_moves_nothing(sandbox_url: str) -> None:
    async with httpx.AsyncClient() as http:
        before = (await http.get(f"{sandbox_url}/sandbox/clock")).json()["now"]
        for seconds in ("soon", -5):
            response = await http.post(
                f"{sandbox_url}/sandbox/clock/advance", json={"seconds": seconds}
            )
            assert response.status_code == 400
            assert response.json()["error"]["param"] == "seconds"
        after = (await http.get(f"{sandbox_url}/sandbox/clock")).json()["now"]
    assert after - before < 5


async def test_new_event_types_list_through_the_types_filter(
    client: stripe.StripeClient, sandbox_url: str
) -> None:
    _, sub = await _subscribe(client, sandbox_url)
    await client.v1.subscriptions.cancel_async(sub.id)
    listed = await client.v1.events.list_async(
        params={"types": ["customer.subscription.created", "customer.subscription.deleted"]}
    )
    assert [event.type for event in listed.data] == [
        "customer.subscription.deleted",
        "customer.subscription.created",
    ]
    deleted = listed.data[0].data.object
    assert deleted["id"] == sub.id
    assert deleted["status"] == "canceled"


async def test_the_portal_page_lists_the_subscriptions_and_cancels_and_resumes_them(
    client: stripe.StripeClient, sandbox_url: str
) -> None:
    _, sub = await _subscribe(client, sandbox_url)
    _, end = _period(sub)
    portal = await client.v1.billing_portal.sessions.create_async(
        params={"customer": str(sub.customer), "return_url": "http://localhost:8000/account"}
    )
    assert isinstance(portal, stripe.billing_portal.Session)
    assert portal.id.startswith("bps_")
    assert portal.url == f"{sandbox_url}/sandbox/portal/{portal.id}"
    base = f"/sandbox/portal/{portal.id}/subscriptions/{sub.id}"

    async with httpx.AsyncClient(base_url=sandbox_url) as http:
        page = await http.get(f"/sandbox/portal/{portal.id}")
        assert page.status_code == 200
        assert page.headers["content-type"].startswith("text/html")
        assert f'data-subscription="{sub.id}" data-status="active"' in page.text
        assert f'data-field="period-end" data-value="{end}"' in page.text
        assert f'action="{base}/cancel"' in page.text
        assert 'data-action="cancel"' in page.text
        assert 'data-action="resume"' not in page.text
        assert 'id="return-link" data-action="return" href="http://localhost:8000/account"' in (
            page.text
        )

        canceled = await http.post(f"{base}/cancel")
        assert (canceled.status_code, canceled.headers["location"]) == (
            303,
            f"/sandbox/portal/{portal.id}",
        )
        assert (await client.v1.subscriptions.retrieve_async(sub.id)).cancel_at_period_end
        page = await http.get(f"/sandbox/portal/{portal.id}")
        assert 'data-cancel-at-period-end="true"' in page.text
        assert 'data-action="resume"' in page.text
        assert 'data-action="cancel"' not in page.text

        resumed = await http.post(f"{base}/resume", headers={"Accept": "application/json"})
        assert resumed.status_code == 200
        assert resumed.json()["cancel_at_period_end"] is False

    types = [event["type"] for event in await _events(sandbox_url)][len(FIRST_EVENTS) :]
    assert types == ["customer.subscription.updated"] * 2


async def test_the_portal_refuses_unknown_sessions_and_other_customers_subscriptions(
    client: stripe.StripeClient, sandbox_url: str
) -> None:
    _, sub = await _subscribe(client, sandbox_url)
    stranger = await create_customer(client, "user-2")
    portal = await client.v1.billing_portal.sessions.create_async(params={"customer": stranger.id})
    async with httpx.AsyncClient(base_url=sandbox_url) as http:
        assert (await http.get("/sandbox/portal/bps_missing")).status_code == 404
        page = await http.get(f"/sandbox/portal/{portal.id}")
        assert 'id="no-subscriptions"' in page.text
        assert "return-link" not in page.text
        foreign = await http.post(f"/sandbox/portal/{portal.id}/subscriptions/{sub.id}/cancel")
        missing = await http.post(f"/sandbox/portal/bps_missing/subscriptions/{sub.id}/cancel")
    for response in (foreign, missing):
        assert response.status_code == 404
        assert response.json()["error"]["code"] == "resource_missing"
    assert not (await client.v1.subscriptions.retrieve_async(sub.id)).cancel_at_period_end


async def test_advancing_past_expires_at_expires_open_sessions_with_their_event(
    client: stripe.StripeClient, sandbox_url: str
) -> None:
    customer = await create_customer(client)
    session = await create_subscription_session(client, customer.id)
    answer = await _advance(sandbox_url, DAY)
    assert answer["expired_sessions"] == [session.id]
    assert (await client.v1.checkout.sessions.retrieve_async(session.id)).status == "expired"
    (event,) = await _events(sandbox_url)
    assert (event["type"], event["object_id"], event["created"]) == (
        "checkout.session.expired",
        session.id,
        session.expires_at,
    )
    assert (await pay(sandbox_url, session)).status_code == 400
