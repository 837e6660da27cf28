"""Embedded Checkout: the session, the free path, the return URL allowlist and the status page."""

from __future__ import annotations

import asyncio
from typing import Any
from urllib.parse import parse_qsl

import httpx
import pytest
from litestar import Litestar
from sqlalchemy import event, select

from facturation_service.models import Order
from facturation_service.stripe_api import OpenedSession, StripeApi
from shared import PROBLEM_MEDIA_TYPE, Database
from tests.support.databases import terminate_connections, using_postgres
from tests.support.sandbox import InProcessSandbox
from tests.unit.facturation_service.conftest import RETURN_ORIGIN, FakeAuth, as_user

PAID = [{"product_id": "pro-month", "quantity": 1}]
RETURN_URL = f"{RETURN_ORIGIN}/checkout/return?session_id={{CHECKOUT_SESSION_ID}}"


async def orders(db: Database) -> list[Order]:
    async with db.sessionmaker() as session:
        return list(await session.scalars(select(Order)))


async def test_checkout_creates_the_customer_first_and_stores_it_in_auth(
    client: httpx.AsyncClient, fake_auth: FakeAuth, sandbox: InProcessSandbox
) -> None:
    user_id = fake_auth.add_user()

    response = await client.post(
        "/billing/checkout-sessions",
        json={"items": PAID, "return_url": RETURN_URL},
        headers=as_user(user_id),
    )

    assert response.status_code == 201
    assert [(r.method, r.path) for r in sandbox.requests] == [
        ("POST", "/v1/customers"),
        ("POST", "/v1/checkout/sessions"),
    ]
    [customer] = sandbox.state.customers
    assert fake_auth.users[user_id].user_stripe_id == customer
    assert sandbox.state.checkout_sessions[response.json()["id"]]["customer"] == customer


async def test_a_basket_of_free_products_completes_without_stripe(
    client: httpx.AsyncClient, fake_auth: FakeAuth, sandbox: InProcessSandbox, db: Database
) -> None:
    user_id = fake_auth.add_user()

    response = await client.post(
        "/billing/checkout-sessions",
        json={"items": [{"product_id": "starter-guide", "quantity": 2}]},
        headers=as_user(user_id),
    )
    status = await client.get(
        f"/billing/checkout-sessions/{response.json()['id']}", headers=as_user(user_id)
    )

    assert response.status_code == 201
    body = response.json()
    assert body["client_secret"] is None
    assert body["amount_total"] == 0
    assert body["status"] == "complete"
    assert body["id"] == body["order_id"]
    assert status.json() == {
        "status": "complete",
        "payment_status": "no_payment_required",
        "invoice_id": None,
        "order_id": body["order_id"],
        "order_status": "complete",
    }
    assert list(sandbox.requests) == []
    [order] = await orders(db)
    assert (order.status, order.stripe_checkout_session_id) == ("complete", None)


async def test_without_return_url_the_first_allowed_origin_is_used(
    client: httpx.AsyncClient, fake_auth: FakeAuth, sandbox: InProcessSandbox
) -> None:
    user_id = fake_auth.add_user()

    response = await client.post(
        "/billing/checkout-sessions", json={"items": PAID}, headers=as_user(user_id)
    )

    assert response.status_code == 201
    [sent] = sandbox.posts("/v1/checkout/sessions")
    assert dict(parse_qsl(sent.body))["return_url"] == (
        f"{RETURN_ORIGIN}/checkout/return?session_id={{CHECKOUT_SESSION_ID}}"
    )


@pytest.mark.parametrize(
    "return_url",
    [
        "https://evil.example/return?session_id={CHECKOUT_SESSION_ID}",
        "https://shop.example.evil.example/r?session_id={CHECKOUT_SESSION_ID}",
        "https://shop.example@evil.example/r?session_id={CHECKOUT_SESSION_ID}",
        "https://user:pw@shop.example/r?session_id={CHECKOUT_SESSION_ID}",
        "http://shop.example/r?session_id={CHECKOUT_SESSION_ID}",
        "https://shop.example:8443/r?session_id={CHECKOUT_SESSION_ID}",
        "//evil.example/r?session_id={CHECKOUT_SESSION_ID}",
        "/r?session_id={CHECKOUT_SESSION_ID}",
        "javascript:alert(1)//{CHECKOUT_SESSION_ID}",
        "https://shop.example\\@evil.example/{CHECKOUT_SESSION_ID}",
        "https://shop.example/return",
    ],
)
async def test_a_return_url_off_the_allowlist_is_422_and_reaches_no_one(
    client: httpx.AsyncClient,
    fake_auth: FakeAuth,
    sandbox: InProcessSandbox,
    db: Database,
    return_url: str,
) -> None:
    user_id = fake_auth.add_user()

    response = await client.post(
        "/billing/checkout-sessions",
        json={"items": PAID, "return_url": return_url},
        headers=as_user(user_id),
    )

    assert response.status_code == 422
    assert response.headers["content-type"] == PROBLEM_MEDIA_TYPE
    assert list(sandbox.requests) == []
    assert await orders(db) == []


async def test_allowed_origin_matches_with_an_explicit_default_port_and_any_case(
    client: httpx.AsyncClient, fake_auth: FakeAuth
) -> None:
    user_id = fake_auth.add_user()

    response = await client.post(
        "/billing/checkout-sessions",
        json={"items": PAID, "return_url": "HTTPS://Shop.Example:443/r?s={CHECKOUT_SESSION_ID}"},
        headers=as_user(user_id),
    )

    assert response.status_code == 201


async def test_session_status_is_read_from_stripe_for_its_owner(
    client: httpx.AsyncClient, fake_auth: FakeAuth, sandbox: InProcessSandbox
) -> None:
    user_id = fake_auth.add_user()
    created = await client.post(
        "/billing/checkout-sessions", json={"items": PAID}, headers=as_user(user_id)
    )
    session_id = created.json()["id"]

    before = await client.get(f"/billing/checkout-sessions/{session_id}", headers=as_user(user_id))
    paid = await sandbox.pay(session_id)
    after = await client.get(f"/billing/checkout-sessions/{session_id}", headers=as_user(user_id))

    order_id = created.json()["order_id"]
    assert before.json() == {
        "status": "open",
        "payment_status": "unpaid",
        "invoice_id": None,
        "order_id": order_id,
        "order_status": "pending_payment",
    }
    assert paid["invoice"] is not None
    assert after.json() == {
        "status": "complete",
        "payment_status": "paid",
        "invoice_id": paid["invoice"],
        "order_id": order_id,
        "order_status": "paid",
    }


async def test_someone_elses_session_is_404_and_stripe_is_not_asked(
    client: httpx.AsyncClient, fake_auth: FakeAuth, sandbox: InProcessSandbox
) -> None:
    owner, intruder = fake_auth.add_user(), fake_auth.add_user()
    created = await client.post(
        "/billing/checkout-sessions", json={"items": PAID}, headers=as_user(owner)
    )
    requests_before = len(sandbox.requests)

    stolen = await client.get(
        f"/billing/checkout-sessions/{created.json()['id']}", headers=as_user(intruder)
    )
    stolen_by_order_id = await client.get(
        f"/billing/checkout-sessions/{created.json()['order_id']}", headers=as_user(intruder)
    )
    missing = await client.get("/billing/checkout-sessions/cs_test_nope", headers=as_user(owner))

    for response in (stolen, stolen_by_order_id, missing):
        assert response.status_code == 404
        assert response.headers["content-type"] == PROBLEM_MEDIA_TYPE
    assert stolen.json()["detail"] == missing.json()["detail"]
    assert len(sandbox.requests) == requests_before


async def test_no_database_connection_is_held_while_stripe_opens_the_session(
    client: httpx.AsyncClient,
    app: Litestar,
    fake_auth: FakeAuth,
    stripe_api: StripeApi,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # 100 checkouts waiting 300 ms on Stripe must not each hold one of the pool's connections.
    # Counted per task: the app's own worker may hold one of its own meanwhile.
    database: Database = app.state.database
    holders: dict[int, asyncio.Task[Any] | None] = {}

    def checked_out(_dbapi: object, record: object, _proxy: object) -> None:
        holders[id(record)] = asyncio.current_task()

    def checked_in(_dbapi: object, record: object) -> None:
        holders.pop(id(record), None)

    pool = database.engine.sync_engine.pool
    event.listen(pool, "checkout", checked_out)
    event.listen(pool, "checkin", checked_in)
    open_session = stripe_api._open_session
    held: list[int] = []

    async def watched(params: Any, idempotency_key: str) -> OpenedSession:
        me = asyncio.current_task()
        held.append(sum(1 for task in holders.values() if task is me))
        return await open_session(params, idempotency_key)

    monkeypatch.setattr(stripe_api, "_open_session", watched)
    user_id = fake_auth.add_user()

    try:
        response = await client.post(
            "/billing/checkout-sessions", json={"items": PAID}, headers=as_user(user_id)
        )
    finally:
        event.remove(pool, "checkout", checked_out)
        event.remove(pool, "checkin", checked_in)

    assert response.status_code == 201
    assert held == [0]


async def test_a_checkout_survives_its_database_connections_being_dropped(
    client: httpx.AsyncClient, fake_auth: FakeAuth, db: Database, facturation_url: str
) -> None:
    """The order row is written on a pool without pre-ping (one round trip); a database restart
    kills its connections, so the write must notice and retry on a fresh one. (On SQLite there
    is no server to drop connections, so there checkout simply keeps working.)"""
    user_id = fake_auth.add_user()
    first = await client.post(
        "/billing/checkout-sessions", json={"items": PAID}, headers=as_user(user_id)
    )
    assert first.status_code == 201
    if using_postgres():
        assert await terminate_connections(facturation_url) >= 1

    second = await client.post(
        "/billing/checkout-sessions", json={"items": PAID}, headers=as_user(user_id)
    )

    assert second.status_code == 201, second.text
    stored = {order.id: order.stripe_checkout_session_id for order in await orders(db)}
    assert stored == {
        first.json()["order_id"]: first.json()["id"],
        second.json()["order_id"]: second.json()["id"],
    }
