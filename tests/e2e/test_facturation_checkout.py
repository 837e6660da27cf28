"""Through the real gateway, auth and facturation processes, with Stripe's HTTP answered by the
Stripe sandbox process: register → login → basket → customer → checkout session."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
import pytest_asyncio

from tests.support.processes import ServiceProcess
from tests.support.stack import Stack, start_stack

# One system for the module: each test signs up its own users, so they do not interfere.
pytestmark = [pytest.mark.e2e, pytest.mark.asyncio(loop_scope="module")]

RETURN_ORIGIN = "https://shop.example"
PAID = [{"product_id": "pro-month", "quantity": 2}, {"product_id": "team-seat", "quantity": 1}]


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def stack(
    tmp_path_factory: pytest.TempPathFactory,
) -> AsyncIterator[tuple[Stack, ServiceProcess]]:
    tmp_path = tmp_path_factory.mktemp("facturation-e2e")
    stripe = ServiceProcess("stripe_sandbox", {"SANDBOX_WEBHOOK_URL": ""}, tmp_path)
    await asyncio.to_thread(stripe.start)
    try:
        async with start_stack(
            tmp_path,
            facturation_url="start",
            facturation_env={
                "STRIPE_SECRET_KEY": "sk_test_e2e_checkout",
                "STRIPE_API_BASE": stripe.url,
                "CHECKOUT_RETURN_ORIGINS": RETURN_ORIGIN,
            },
        ) as running:
            yield running, stripe
    finally:
        await asyncio.to_thread(stripe.stop)


async def sign_up(http: httpx.AsyncClient, email: str) -> dict[str, str]:
    password = "correct horse battery staple"
    registered = await http.post(
        "/api/v1/auth/register", json={"email": email, "password": password, "name": "E2E"}
    )
    assert registered.status_code == 201, registered.text
    login = await http.post("/api/v1/auth/login", json={"email": email, "password": password})
    assert login.status_code == 200, login.text
    return {"Authorization": f"Bearer {login.json()['access_token']}"}


async def stripe_customers(stripe: ServiceProcess, user_id: str) -> list[dict[str, Any]]:
    """The customers the Stripe sandbox holds for this user."""
    async with httpx.AsyncClient(base_url=stripe.url) as http:
        response = await http.get(
            "/v1/customers",
            params={"limit": 100},
            headers={"Authorization": "Bearer sk_test_e2e_checkout"},
        )
    return [c for c in response.json()["data"] if c["metadata"].get("user_id") == user_id]


async def test_register_login_basket_customer_and_checkout_session_through_the_gateway(
    stack: tuple[Stack, ServiceProcess],
) -> None:
    system, stripe = stack
    async with httpx.AsyncClient(base_url=system.url, timeout=30) as http:
        token = await sign_up(http, "buyer@example.com")

        products = await http.get("/api/v1/products")
        basket = await http.post("/api/v1/basket/validate", json={"items": PAID}, headers=token)
        customer = await http.post("/api/v1/billing/customer", headers=token)
        me = await http.get("/api/v1/users/me", headers=token)
        again = await http.post("/api/v1/billing/customer", headers=token)
        basket_after = await http.post(
            "/api/v1/basket/validate", json={"items": PAID}, headers=token
        )
        session = await http.post(
            "/api/v1/billing/checkout-sessions",
            json={"items": PAID, "return_url": f"{RETURN_ORIGIN}/r?id={{CHECKOUT_SESSION_ID}}"},
            headers=token,
        )
        status = await http.get(
            f"/api/v1/billing/checkout-sessions/{session.json()['id']}", headers=token
        )

    assert products.status_code == 200
    assert {p["id"] for p in products.json()["products"]} >= {"starter-guide", "pro-month"}
    assert basket.status_code == 200, basket.text
    assert basket.json()["amount_total"] == 2 * 1900 + 900
    assert basket.json()["user"]["email"] == "buyer@example.com"
    assert basket.json()["needs_stripe_customer"] is True
    assert customer.status_code == 201, customer.text
    user_stripe_id = customer.json()["user_stripe_id"]
    assert me.json()["user_stripe_id"] == user_stripe_id
    assert again.status_code == 200
    assert again.json()["user_stripe_id"] == user_stripe_id
    assert basket_after.json()["needs_stripe_customer"] is False
    assert session.status_code == 201, session.text
    body = session.json()
    assert body["id"].startswith("cs_test_")
    assert body["client_secret"].startswith(body["id"] + "_secret_")
    assert (body["amount_total"], body["currency"]) == (4700, "eur")
    assert status.json() == {
        "status": "open",
        "payment_status": "unpaid",
        "invoice_id": None,
        "order_id": body["order_id"],
        "order_status": "pending_payment",
    }
    [stored] = await stripe_customers(stripe, me.json()["id"])
    assert stored["id"] == user_stripe_id
    assert stored["metadata"] == {"user_id": me.json()["id"]}


async def test_twenty_concurrent_customer_calls_through_the_gateway_make_one_customer(
    stack: tuple[Stack, ServiceProcess],
) -> None:
    system, stripe = stack
    async with httpx.AsyncClient(base_url=system.url, timeout=30) as http:
        token = await sign_up(http, "racer@example.com")
        responses = await asyncio.gather(
            *(http.post("/api/v1/billing/customer", headers=token) for _ in range(20))
        )
        me = await http.get("/api/v1/users/me", headers=token)

    assert sorted(r.status_code for r in responses) == [200] * 19 + [201]
    ids = {r.json()["user_stripe_id"] for r in responses}
    assert ids == {me.json()["user_stripe_id"]}
    assert [c["id"] for c in await stripe_customers(stripe, me.json()["id"])] == list(ids)


async def test_a_checkout_session_is_visible_to_its_owner_only(
    stack: tuple[Stack, ServiceProcess],
) -> None:
    system, _ = stack
    async with httpx.AsyncClient(base_url=system.url, timeout=30) as http:
        owner = await sign_up(http, "owner@example.com")
        intruder = await sign_up(http, "intruder@example.com")
        owner_id = (await http.get("/api/v1/users/me", headers=owner)).json()["id"]
        session = await http.post(
            "/api/v1/billing/checkout-sessions", json={"items": PAID}, headers=owner
        )
        path = f"/api/v1/billing/checkout-sessions/{session.json()['id']}"
        mine = await http.get(path, headers=owner)
        theirs = await http.get(path, headers=intruder)
        anonymous = await http.get(path)
        # The gateway replaces any identity header a client sends with the verified one.
        spoofed = await http.get(path, headers={**intruder, "X-User-Id": owner_id})

    assert session.status_code == 201, session.text
    assert mine.status_code == 200
    assert theirs.status_code == 404
    assert theirs.headers["content-type"] == "application/problem+json"
    assert anonymous.status_code == 401
    assert spoofed.status_code == 404


async def test_put_stripe_customer_through_the_gateway_accepts_only_the_users_own_customer(
    stack: tuple[Stack, ServiceProcess],
) -> None:
    system, _ = stack
    async with httpx.AsyncClient(base_url=system.url, timeout=30) as http:
        alice = await sign_up(http, "alice@example.com")
        bob = await sign_up(http, "bob@example.com")
        alice_id = (await http.post("/api/v1/billing/customer", headers=alice)).json()[
            "user_stripe_id"
        ]
        bob_id = (await http.post("/api/v1/billing/customer", headers=bob)).json()["user_stripe_id"]
        own = await http.put(
            "/api/v1/users/me/stripe-customer", json={"user_stripe_id": alice_id}, headers=alice
        )
        other = await http.put(
            "/api/v1/users/me/stripe-customer", json={"user_stripe_id": bob_id}, headers=alice
        )
        me = await http.get("/api/v1/users/me", headers=alice)

    assert own.status_code == 200
    assert other.status_code == 409
    assert me.json()["user_stripe_id"] == alice_id


async def test_a_free_basket_completes_without_a_checkout_session(
    stack: tuple[Stack, ServiceProcess],
) -> None:
    system, stripe = stack
    async with httpx.AsyncClient(base_url=system.url, timeout=30) as http:
        token = await sign_up(http, "free@example.com")
        user_id = (await http.get("/api/v1/users/me", headers=token)).json()["id"]
        response = await http.post(
            "/api/v1/billing/checkout-sessions",
            json={"items": [{"product_id": "starter-guide", "quantity": 1}]},
            headers=token,
        )

    assert response.status_code == 201
    assert response.json()["status"] == "complete"
    assert response.json()["client_secret"] is None
    assert await stripe_customers(stripe, user_id) == []
