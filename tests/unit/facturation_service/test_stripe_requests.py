"""What exactly goes over the wire to Stripe, and what happens when Stripe fails."""

from __future__ import annotations

from urllib.parse import parse_qsl

import httpx
import pytest
import stripe
from sqlalchemy import func, select

from facturation_service.models import Order, StripeCustomer
from facturation_service.stripe_api import problem_from_stripe_error
from shared import PROBLEM_MEDIA_TYPE, Database
from stripe_sandbox.faults import FaultKind
from tests.support.sandbox import InProcessSandbox
from tests.unit.facturation_service.conftest import RETURN_ORIGIN, FakeAuth, as_user

RETURN_URL = f"{RETURN_ORIGIN}/done?session_id={{CHECKOUT_SESSION_ID}}"
SESSIONS = "/v1/checkout/sessions"
CUSTOMERS = "/v1/customers"


def flat(raw_body: str) -> dict[str, str]:
    return dict(parse_qsl(raw_body, keep_blank_values=True))


async def count(db: Database, model: type[Order] | type[StripeCustomer]) -> int:
    async with db.sessionmaker() as session:
        return int(await session.scalar(select(func.count()).select_from(model)) or 0)


async def checkout(client: httpx.AsyncClient, user_id: str) -> httpx.Response:
    return await client.post(
        "/billing/checkout-sessions",
        json={
            "items": [
                # A client-sent price is ignored: only ids and quantities are read.
                {"product_id": "pro-month", "quantity": 2, "unit_amount": 1},
                {"product_id": "team-seat", "quantity": 3},
            ],
            "return_url": RETURN_URL,
        },
        headers=as_user(user_id),
    )


async def test_customer_creation_sends_email_metadata_and_an_idempotency_key_from_the_user(
    client: httpx.AsyncClient, fake_auth: FakeAuth, sandbox: InProcessSandbox
) -> None:
    user_id = fake_auth.add_user("ada@example.com")

    response = await client.post("/billing/customer", headers=as_user(user_id))

    assert response.status_code == 201
    [sent] = sandbox.posts(CUSTOMERS)
    assert flat(sent.body) == {
        "email": "ada@example.com",
        "name": "Ada Lovelace",
        "metadata[user_id]": user_id,
    }
    assert sent.headers["idempotency-key"] == f"customer-create:{user_id}"
    assert sent.headers["authorization"] == "Bearer sk_test_unit"
    assert sent.headers["content-type"] == "application/x-www-form-urlencoded"
    assert sent.headers["stripe-version"] == stripe.api_version


async def test_checkout_session_request_is_embedded_with_invoice_customer_and_server_prices(
    client: httpx.AsyncClient,
    fake_auth: FakeAuth,
    sandbox: InProcessSandbox,
    db: Database,
) -> None:
    user_id = fake_auth.add_user()

    response = await checkout(client, user_id)

    assert response.status_code == 201, response.text
    body = response.json()
    [customer] = sandbox.state.customers
    [sent] = sandbox.posts(SESSIONS)
    order_id = body["order_id"]
    assert flat(sent.body) == {
        "ui_mode": "embedded_page",
        "mode": "payment",
        "customer": customer,
        "client_reference_id": order_id,
        "line_items[0][quantity]": "2",
        "line_items[0][price_data][currency]": "eur",
        "line_items[0][price_data][unit_amount]": "1900",
        "line_items[0][price_data][product_data][name]": "Pro plan, one month",
        "line_items[0][price_data][product_data][metadata][product_id]": "pro-month",
        "line_items[1][quantity]": "3",
        "line_items[1][price_data][currency]": "eur",
        "line_items[1][price_data][unit_amount]": "900",
        "line_items[1][price_data][product_data][name]": "Team seat, one month",
        "line_items[1][price_data][product_data][metadata][product_id]": "team-seat",
        "invoice_creation[enabled]": "true",
        "invoice_creation[invoice_data][metadata][user_id]": user_id,
        "invoice_creation[invoice_data][metadata][order_id]": order_id,
        "return_url": RETURN_URL,
        "metadata[user_id]": user_id,
        "metadata[order_id]": order_id,
    }
    assert sent.headers["idempotency-key"] == f"checkout-session:{order_id}"
    assert sent.headers["authorization"] == "Bearer sk_test_unit"
    session = sandbox.state.checkout_sessions[body["id"]]
    assert body == {
        "id": session["id"],
        "client_secret": session["client_secret"],
        "amount_total": 2 * 1900 + 3 * 900,
        "currency": "eur",
        "order_id": order_id,
        "status": "pending_payment",
    }
    async with db.sessionmaker() as db_session:
        order = await db_session.get(Order, order_id)
    assert order is not None
    assert order.status == "pending_payment"
    assert order.stripe_checkout_session_id == session["id"]
    assert order.user_stripe_id == customer
    assert order.amount_total == 6500


async def test_retry_after_stripe_500_reuses_the_idempotency_key(
    client: httpx.AsyncClient,
    fake_auth: FakeAuth,
    sandbox: InProcessSandbox,
    db: Database,
) -> None:
    user_id = fake_auth.add_user()
    sandbox.faults.add("POST", SESSIONS, "api_error")

    response = await checkout(client, user_id)

    assert response.status_code == 201, response.text
    attempts = sandbox.posts(SESSIONS)
    assert [(a.fault, a.status) for a in attempts] == [("api_error", 500), (None, 200)]
    assert attempts[0].headers["idempotency-key"] == attempts[1].headers["idempotency-key"]
    assert attempts[0].body == attempts[1].body
    assert len(sandbox.state.checkout_sessions) == 1
    assert await count(db, Order) == 1


async def test_retry_after_connection_error_reuses_the_idempotency_key(
    client: httpx.AsyncClient, fake_auth: FakeAuth, sandbox: InProcessSandbox
) -> None:
    user_id = fake_auth.add_user()
    sandbox.faults.add("POST", CUSTOMERS, "disconnect")

    response = await client.post("/billing/customer", headers=as_user(user_id))

    assert response.status_code == 201
    attempts = sandbox.posts(CUSTOMERS)
    assert [(a.fault, a.status) for a in attempts] == [("disconnect", None), (None, 200)]
    assert {a.headers["idempotency-key"] for a in attempts} == {f"customer-create:{user_id}"}
    assert len(sandbox.state.customers) == 1


async def test_card_error_is_402_with_stripes_message_and_request_id_and_no_order(
    client: httpx.AsyncClient,
    fake_auth: FakeAuth,
    sandbox: InProcessSandbox,
    db: Database,
) -> None:
    user_id = fake_auth.add_user()
    sandbox.faults.add("POST", SESSIONS, "card_declined")

    response = await checkout(client, user_id)
    [declined] = sandbox.posts(SESSIONS)

    assert response.status_code == 402
    assert response.headers["content-type"] == PROBLEM_MEDIA_TYPE
    problem = response.json()
    assert problem["detail"] == "Your card was declined."
    assert problem["stripe_request_id"] == declined.request_id
    assert declined.status == 402
    assert problem["stripe_code"] == "card_declined"
    assert await count(db, Order) == 0


async def test_invalid_request_is_422_with_stripes_message_and_request_id_and_no_order(
    client: httpx.AsyncClient,
    fake_auth: FakeAuth,
    sandbox: InProcessSandbox,
    db: Database,
) -> None:
    user_id = fake_auth.add_user()
    sandbox.faults.add(
        "POST",
        SESSIONS,
        "invalid_request",
        message="The line items are invalid.",
        param="line_items",
    )

    response = await checkout(client, user_id)
    [refused] = sandbox.posts(SESSIONS)

    assert response.status_code == 422
    problem = response.json()
    assert problem["detail"] == "The line items are invalid."
    assert problem["stripe_request_id"] == refused.request_id
    assert refused.status == 400
    assert await count(db, Order) == 0


async def test_stripe_unreachable_after_retries_is_502_and_leaves_no_row(
    client: httpx.AsyncClient,
    fake_auth: FakeAuth,
    sandbox: InProcessSandbox,
    db: Database,
) -> None:
    user_id = fake_auth.add_user()
    sandbox.faults.add("POST", CUSTOMERS, "disconnect", count=3)

    response = await checkout(client, user_id)

    assert response.status_code == 502
    assert response.headers["content-type"] == PROBLEM_MEDIA_TYPE
    assert len(sandbox.posts(CUSTOMERS)) == 3  # the first try and two retries
    assert await count(db, StripeCustomer) == 0
    assert await count(db, Order) == 0
    assert sandbox.posts(SESSIONS) == []


async def test_stripe_timing_out_after_retries_is_504_and_leaves_no_order(
    client: httpx.AsyncClient,
    fake_auth: FakeAuth,
    sandbox: InProcessSandbox,
    db: Database,
) -> None:
    user_id = fake_auth.add_user()
    await client.post("/billing/customer", headers=as_user(user_id))
    sandbox.faults.add("POST", SESSIONS, "timeout", count=3)

    response = await checkout(client, user_id)

    assert response.status_code == 504
    assert [a.fault for a in sandbox.posts(SESSIONS)] == ["timeout"] * 3
    assert await count(db, Order) == 0


@pytest.mark.parametrize(
    ("kind", "stripe_status", "status"),
    [
        ("idempotency_error", 400, 409),
        ("invalid_api_key", 401, 502),
        ("rate_limit", 429, 503),
    ],
)
async def test_other_stripe_refusals_map_to_problems_and_leave_no_order(
    client: httpx.AsyncClient,
    fake_auth: FakeAuth,
    sandbox: InProcessSandbox,
    db: Database,
    kind: FaultKind,
    stripe_status: int,
    status: int,
) -> None:
    user_id = fake_auth.add_user()
    await client.post("/billing/customer", headers=as_user(user_id))
    # The SDK does not retry these, so the one answer is the final one.
    sandbox.faults.add("POST", SESSIONS, kind)

    response = await checkout(client, user_id)

    [refused] = sandbox.posts(SESSIONS)
    assert refused.status == stripe_status
    assert response.status_code == status
    assert response.headers["content-type"] == PROBLEM_MEDIA_TYPE
    assert response.json()["stripe_request_id"] == refused.request_id
    assert await count(db, Order) == 0


@pytest.mark.parametrize(
    ("cause", "status"),
    [
        (httpx.ReadTimeout("slow"), 504),
        # A server, even a scripted one, cannot make the client's connect phase time out.
        (httpx.ConnectTimeout("slow"), 504),
        (httpx.ConnectError("refused"), 502),
        (httpx.RemoteProtocolError("dropped"), 502),
    ],
)
def test_network_failures_map_to_504_when_they_are_timeouts_and_502_otherwise(
    cause: Exception, status: int
) -> None:
    error = stripe.APIConnectionError("Unexpected error communicating with Stripe.")  # type: ignore[no-untyped-call]
    error.__cause__ = cause

    assert problem_from_stripe_error(error).status == status
