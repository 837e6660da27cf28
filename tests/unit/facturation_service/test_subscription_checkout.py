"""A recurring plan is checked out alone, in ``mode=subscription``, and a user gets one
subscription: the database's slot refuses a second checkout (409), under concurrency and across
two app instances, gives the slot back when Stripe fails, and lets an abandoned session be
replaced once it is past its ``expires_at``."""

from __future__ import annotations

import asyncio
import time
from datetime import timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import insert, select, update

from facturation_service.app import create_app
from facturation_service.models import Order, SubscriptionSlot, utcnow
from facturation_service.settings import FacturationSettings
from facturation_service.stripe_api import StripeApi
from facturation_service.subscription_slots import STALE_HOLD_SECONDS
from shared import PROBLEM_MEDIA_TYPE, Database
from tests.support.sandbox import InProcessSandbox
from tests.unit.facturation_service.conftest import RETURN_ORIGIN, FakeAuth, as_user, running

SESSIONS = "/v1/checkout/sessions"
RETURN_URL = f"{RETURN_ORIGIN}/checkout/return?session_id={{CHECKOUT_SESSION_ID}}"
PLAN = [{"product_id": "plus-monthly", "quantity": 1}]


async def checkout(
    client: httpx.AsyncClient, user_id: str, items: list[dict[str, Any]] = PLAN
) -> httpx.Response:
    return await client.post(
        "/billing/checkout-sessions",
        json={"items": items, "return_url": RETURN_URL},
        headers=as_user(user_id),
    )


async def slots(db: Database) -> list[SubscriptionSlot]:
    async with db.sessionmaker() as session:
        return list(await session.scalars(select(SubscriptionSlot)))


async def orders(db: Database) -> list[Order]:
    async with db.sessionmaker() as session:
        return list(await session.scalars(select(Order)))


async def test_the_catalog_shows_recurring_for_plans_and_null_for_one_time_products(
    client: httpx.AsyncClient,
) -> None:
    products = {p["id"]: p for p in (await client.get("/products")).json()["products"]}

    assert products["plus-monthly"]["recurring"] == {"interval": "month", "interval_count": 1}
    assert products["plus-yearly"]["recurring"] == {"interval": "year", "interval_count": 1}
    assert products["pro-month"]["recurring"] is None


async def test_a_plan_opens_a_subscription_mode_session_with_the_contracts_parameters(
    client: httpx.AsyncClient, fake_auth: FakeAuth, sandbox: InProcessSandbox, db: Database
) -> None:
    user_id = fake_auth.add_user()
    before = int(time.time())

    response = await checkout(client, user_id)

    assert response.status_code == 201, response.text
    body = response.json()
    assert body["client_secret"]
    assert (body["amount_total"], body["currency"], body["status"]) == (
        1500,
        "eur",
        "pending_payment",
    )
    [request] = sandbox.posts(SESSIONS)
    form = request.params
    assert (form["mode"], form["ui_mode"]) == ("subscription", "embedded_page")
    [line] = form["line_items"]
    assert line["quantity"] == "1"
    assert line["price_data"]["recurring"] == {"interval": "month", "interval_count": "1"}
    assert line["price_data"]["unit_amount"] == "1500"
    assert form["subscription_data"]["metadata"] == {
        "user_id": user_id,
        "order_id": body["order_id"],
        "product_id": "plus-monthly",
    }
    assert form["metadata"] == {"user_id": user_id, "order_id": body["order_id"]}
    assert "invoice_creation" not in form
    assert before + 1800 < int(form["expires_at"]) <= int(time.time()) + 1800 + 60
    assert request.idempotency_key == f"checkout-session:{body['order_id']}"
    [order] = await orders(db)
    assert (order.mode, order.stripe_checkout_session_id) == ("subscription", body["id"])
    [slot] = await slots(db)
    assert (slot.user_id, slot.checkout_session_id, slot.subscription_id) == (
        user_id,
        body["id"],
        None,
    )


@pytest.mark.parametrize(
    "items",
    [
        [{"product_id": "plus-monthly", "quantity": 1}, {"product_id": "pro-month", "quantity": 1}],
        [{"product_id": "plus-monthly", "quantity": 2}],
        [
            {"product_id": "plus-monthly", "quantity": 1},
            {"product_id": "plus-yearly", "quantity": 1},
        ],
    ],
    ids=["mixed-basket", "quantity-2", "two-plans"],
)
async def test_a_plan_in_any_other_basket_is_422_and_nothing_is_made(
    client: httpx.AsyncClient,
    fake_auth: FakeAuth,
    sandbox: InProcessSandbox,
    db: Database,
    items: list[dict[str, Any]],
) -> None:
    response = await checkout(client, fake_auth.add_user(), items)

    assert response.status_code == 422
    assert response.headers["content-type"].startswith(PROBLEM_MEDIA_TYPE)
    assert sandbox.posts(SESSIONS) == []
    assert await slots(db) == []
    assert await orders(db) == []


async def test_twenty_concurrent_subscription_checkouts_make_one_session_and_nineteen_409(
    client: httpx.AsyncClient, fake_auth: FakeAuth, sandbox: InProcessSandbox, db: Database
) -> None:
    sandbox.state.latency_ms = 50  # every call arrives while the first is still at Stripe
    user_id = fake_auth.add_user()

    responses = await asyncio.gather(*(checkout(client, user_id) for _ in range(20)))

    assert sorted(r.status_code for r in responses) == [201] + [409] * 19
    assert len(sandbox.posts(SESSIONS)) == 1
    assert len(await orders(db)) == 1
    assert len(await slots(db)) == 1


async def test_two_app_instances_on_one_database_also_make_one_session(
    client: httpx.AsyncClient,
    settings: FacturationSettings,
    fake_auth: FakeAuth,
    sandbox: InProcessSandbox,
    stripe_api: StripeApi,
    db: Database,
) -> None:
    """A second app on the same database stands for a second replica."""
    sandbox.state.latency_ms = 50
    user_id = fake_auth.add_user()
    async with running(create_app(settings, stripe=stripe_api, auth=fake_auth)) as other:
        responses = await asyncio.gather(
            *(checkout(client if i % 2 else other, user_id) for i in range(20))
        )

    assert sorted(r.status_code for r in responses) == [201] + [409] * 19
    assert len(sandbox.posts(SESSIONS)) == 1
    assert len(await orders(db)) == 1


async def test_when_stripe_fails_the_slot_is_given_back_and_nothing_half_made_stays(
    client: httpx.AsyncClient, fake_auth: FakeAuth, sandbox: InProcessSandbox, db: Database
) -> None:
    user_id = fake_auth.add_user()
    sandbox.faults.add("POST", SESSIONS, "api_error", count=3)  # the SDK's two retries too

    failed = await checkout(client, user_id)

    assert failed.status_code == 502
    assert await slots(db) == []
    assert await orders(db) == []
    assert (await checkout(client, user_id)).status_code == 201


async def test_an_open_subscription_checkout_refuses_a_second_one_with_409(
    client: httpx.AsyncClient, fake_auth: FakeAuth, sandbox: InProcessSandbox
) -> None:
    user_id = fake_auth.add_user()
    assert (await checkout(client, user_id)).status_code == 201

    second = await checkout(client, user_id)

    assert second.status_code == 409
    assert second.headers["content-type"].startswith(PROBLEM_MEDIA_TYPE)
    assert len(sandbox.posts(SESSIONS)) == 1


async def test_a_session_past_its_expiry_is_expired_at_stripe_and_its_slot_taken_over_once(
    client: httpx.AsyncClient, fake_auth: FakeAuth, sandbox: InProcessSandbox, db: Database
) -> None:
    user_id = fake_auth.add_user()
    abandoned = (await checkout(client, user_id)).json()["id"]
    async with db.engine.begin() as connection:
        await connection.execute(
            update(SubscriptionSlot).values(checkout_expires_at=int(time.time()) - 1)
        )
    sandbox.state.latency_ms = 30

    responses = await asyncio.gather(*(checkout(client, user_id) for _ in range(10)))

    assert sorted(r.status_code for r in responses) == [201] + [409] * 9
    assert sandbox.state.checkout_sessions[abandoned]["status"] == "expired"
    [winner] = [r.json()["id"] for r in responses if r.status_code == 201]
    [slot] = await slots(db)
    assert slot.checkout_session_id == winner
    assert len(sandbox.posts(SESSIONS)) == 2


async def test_a_one_time_basket_still_opens_a_payment_session_without_taking_the_slot(
    client: httpx.AsyncClient, fake_auth: FakeAuth, sandbox: InProcessSandbox, db: Database
) -> None:
    user_id = fake_auth.add_user()

    response = await checkout(client, user_id, [{"product_id": "pro-month", "quantity": 2}])

    assert response.status_code == 201
    [request] = sandbox.posts(SESSIONS)
    assert request.params["mode"] == "payment"
    assert request.params["invoice_creation"]["enabled"] == "true"
    assert await slots(db) == []


async def test_a_holder_that_died_before_binding_a_session_is_replaced_only_once_stale(
    client: httpx.AsyncClient, fake_auth: FakeAuth, db: Database
) -> None:
    user_id = fake_auth.add_user()
    async with db.engine.begin() as connection:
        await connection.execute(
            insert(SubscriptionSlot).values(user_id=user_id, holder="ord_dead", taken_at=utcnow())
        )
    assert (await checkout(client, user_id)).status_code == 409  # maybe still at Stripe

    async with db.engine.begin() as connection:
        await connection.execute(
            update(SubscriptionSlot).values(
                taken_at=utcnow() - timedelta(seconds=STALE_HOLD_SECONDS + 1)
            )
        )
    response = await checkout(client, user_id)

    assert response.status_code == 201
    [slot] = await slots(db)
    assert (slot.holder, slot.checkout_session_id) == (
        response.json()["order_id"],
        response.json()["id"],
    )
