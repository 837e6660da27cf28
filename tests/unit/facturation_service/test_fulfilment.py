"""Fulfilment: a paid order grants each of its products once, from whichever of the webhook, the
return page or the free checkout comes first, however many times and however concurrently."""

from __future__ import annotations

import asyncio

import httpx

from facturation_service.fulfilment import mark_paid_and_fulfil
from facturation_service.models import Order
from shared import Database
from tests.support import stripe_events
from tests.support.sandbox import InProcessSandbox
from tests.unit.facturation_service.conftest import FakeAuth, as_user
from tests.unit.facturation_service.orders_support import (
    PRODUCTS,
    USER_ID,
    apply,
    apply_concurrently,
    count_entitlements,
    entitlements_of,
    get_order,
    paid_session_event,
    store_order,
)


async def test_a_paid_session_event_marks_the_order_paid_and_grants_each_product_once(
    db: Database,
) -> None:
    order_id = await store_order(db, session_id="cs_test_grant_0001")

    await apply(db, paid_session_event(order_id, "cs_test_grant_0001", "pi_Grant0001"))
    await apply(db, paid_session_event(order_id, "cs_test_grant_0001", "pi_Grant0001"))

    order = await get_order(db, order_id)
    assert (order.status, order.stripe_payment_intent_id) == ("paid", "pi_Grant0001")
    assert order.fulfilled_at is not None
    assert await entitlements_of(db, order_id) == dict.fromkeys(PRODUCTS, "active")


async def test_an_unpaid_completed_session_grants_nothing_until_its_payment_succeeds(
    db: Database,
) -> None:
    order_id = await store_order(db, session_id="cs_test_async_0009")
    metadata = {"user_id": USER_ID, "order_id": order_id}
    waiting = stripe_events.checkout_session(
        session_id="cs_test_async_0009", payment_status="unpaid", metadata=metadata
    )

    await apply(db, stripe_events.event("checkout.session.completed", waiting))
    assert await entitlements_of(db, order_id) == {}

    succeeded = stripe_events.checkout_session(session_id="cs_test_async_0009", metadata=metadata)
    await apply(db, stripe_events.event("checkout.session.async_payment_succeeded", succeeded))
    assert await entitlements_of(db, order_id) == dict.fromkeys(PRODUCTS, "active")


async def test_a_failed_or_expired_order_grants_nothing(db: Database) -> None:
    order_id = await store_order(db, session_id="cs_test_expired_0001")
    expired = stripe_events.checkout_session(
        session_id="cs_test_expired_0001",
        status="expired",
        payment_status="unpaid",
        metadata={"order_id": order_id},
    )

    await apply(db, stripe_events.event("checkout.session.expired", expired))
    await apply(db, paid_session_event(order_id, "cs_test_expired_0001", "pi_Late0001"))

    assert (await get_order(db, order_id)).status == "expired"
    assert await entitlements_of(db, order_id) == {}


async def test_twenty_concurrent_fulfil_calls_grant_one_set_of_entitlements(
    db: Database,
) -> None:
    order_id = await store_order(db)

    async def fulfil_once() -> bool:
        async with db.sessionmaker() as session, session.begin():
            return await mark_paid_and_fulfil(
                session, Order.id == order_id, payment_intent="pi_Race0001"
            )

    moved = await asyncio.gather(*(fulfil_once() for _ in range(20)))

    assert moved.count(True) == 1
    assert await count_entitlements(db, order_id) == len(PRODUCTS)
    assert (await get_order(db, order_id)).status == "paid"


async def test_a_free_basket_is_complete_and_granted_at_once(
    client: httpx.AsyncClient, fake_auth: FakeAuth, db: Database
) -> None:
    user_id = fake_auth.add_user()

    created = await client.post(
        "/billing/checkout-sessions",
        json={"items": [{"product_id": "starter-guide", "quantity": 1}]},
        headers=as_user(user_id),
    )
    products = await client.get("/billing/entitlements", headers=as_user(user_id))

    order_id = created.json()["order_id"]
    assert (await get_order(db, order_id)).status == "complete"
    assert [
        (e["product_id"], e["status"], e["source"], e["source_id"]) for e in products.json()["data"]
    ] == [("starter-guide", "active", "order", order_id)]


async def test_the_return_page_alone_fulfils_a_paid_session_and_reports_the_order(
    client: httpx.AsyncClient, fake_auth: FakeAuth, sandbox: InProcessSandbox, db: Database
) -> None:
    user_id = fake_auth.add_user()
    created = await client.post(
        "/billing/checkout-sessions",
        json={"items": [{"product_id": "pro-month", "quantity": 1}]},
        headers=as_user(user_id),
    )
    session_id, order_id = created.json()["id"], created.json()["order_id"]
    await sandbox.pay(session_id)

    status = await client.get(f"/billing/checkout-sessions/{session_id}", headers=as_user(user_id))

    assert (status.json()["order_id"], status.json()["order_status"]) == (order_id, "paid")
    assert await entitlements_of(db, order_id) == {"pro-month": "active"}


async def test_fulfil_raced_by_the_worker_and_the_return_page_twenty_times_grants_once(
    client: httpx.AsyncClient, fake_auth: FakeAuth, sandbox: InProcessSandbox, db: Database
) -> None:
    user_id = fake_auth.add_user()
    created = await client.post(
        "/billing/checkout-sessions",
        json={"items": [{"product_id": "pro-month", "quantity": 1}]},
        headers=as_user(user_id),
    )
    session_id, order_id = created.json()["id"], created.json()["order_id"]
    paid = await sandbox.pay(session_id)
    payment_intent = str(paid["payment_intent"])
    deliveries = [paid_session_event(order_id, session_id, payment_intent) for _ in range(10)]

    worker_run = apply_concurrently(db, *deliveries)
    pages = [
        client.get(f"/billing/checkout-sessions/{session_id}", headers=as_user(user_id))
        for _ in range(10)
    ]
    answers, _ = await asyncio.gather(asyncio.gather(*pages), worker_run)

    assert [answer.status_code for answer in answers] == [200] * 10, [a.text for a in answers]
    assert {answer.json()["order_status"] for answer in answers} == {"paid"}
    assert await count_entitlements(db, order_id) == 1
    assert await entitlements_of(db, order_id) == {"pro-month": "active"}
    order = await get_order(db, order_id)
    assert (order.status, order.stripe_payment_intent_id) == ("paid", payment_intent)
