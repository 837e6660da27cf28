"""One Stripe customer per user, stored in auth, whatever the concurrency or failures."""

from __future__ import annotations

import asyncio

import httpx
import pytest
from sqlalchemy import select

from facturation_service.app import create_app
from facturation_service.customers import Customers, KnownCustomers, UserLocks
from facturation_service.models import StripeCustomer
from facturation_service.settings import FacturationSettings
from facturation_service.stripe_api import StripeApi
from shared import INTERNAL_TOKEN_HEADER, PROBLEM_MEDIA_TYPE, Database, ServiceUnavailableError
from tests.support.sandbox import InProcessSandbox
from tests.unit.facturation_service.conftest import FakeAuth, as_user, running

CUSTOMERS = "/v1/customers"


async def stored_customers(db: Database) -> list[StripeCustomer]:
    async with db.sessionmaker() as session:
        return list(await session.scalars(select(StripeCustomer)))


async def test_first_call_creates_the_customer_201_and_the_next_one_finds_it_200(
    client: httpx.AsyncClient, fake_auth: FakeAuth, sandbox: InProcessSandbox
) -> None:
    user_id = fake_auth.add_user()

    first = await client.post("/billing/customer", headers=as_user(user_id))
    second = await client.post("/billing/customer", headers=as_user(user_id))

    assert first.status_code == 201
    assert second.status_code == 200
    assert first.json() == second.json()
    user_stripe_id = first.json()["user_stripe_id"]
    assert sandbox.state.customers[user_stripe_id]["metadata"] == {"user_id": user_id}
    assert fake_auth.users[user_id].user_stripe_id == user_stripe_id
    assert len(sandbox.posts(CUSTOMERS)) == 1


async def test_twenty_concurrent_calls_make_one_stripe_customer_and_store_one_id(
    client: httpx.AsyncClient,
    fake_auth: FakeAuth,
    sandbox: InProcessSandbox,
    db: Database,
) -> None:
    sandbox.state.latency_ms = 50  # every call arrives while the first one is still at Stripe
    user_id = fake_auth.add_user()

    responses = await asyncio.gather(
        *(client.post("/billing/customer", headers=as_user(user_id)) for _ in range(20))
    )

    assert sorted(r.status_code for r in responses) == [200] * 19 + [201]
    assert len({r.json()["user_stripe_id"] for r in responses}) == 1
    assert len(sandbox.posts(CUSTOMERS)) == 1
    assert len(sandbox.state.customers) == 1
    [row] = await stored_customers(db)
    assert row.user_stripe_id == responses[0].json()["user_stripe_id"]
    assert fake_auth.users[user_id].user_stripe_id == row.user_stripe_id
    assert fake_auth.store_calls == 1


async def test_two_replicas_racing_for_one_user_end_with_one_customer(
    client: httpx.AsyncClient,
    settings: FacturationSettings,
    fake_auth: FakeAuth,
    sandbox: InProcessSandbox,
    stripe_api: StripeApi,
    db: Database,
) -> None:
    """A second app on the same database stands for a second replica (its own process lock)."""
    sandbox.state.latency_ms = 50
    user_id = fake_auth.add_user()
    async with running(create_app(settings, stripe=stripe_api, auth=fake_auth)) as other:
        responses = await asyncio.gather(
            *(
                (client if i % 2 else other).post("/billing/customer", headers=as_user(user_id))
                for i in range(20)
            )
        )

    assert {r.status_code for r in responses} <= {200, 201}
    assert len({r.json()["user_stripe_id"] for r in responses}) == 1
    assert len(sandbox.state.customers) == 1
    [row] = await stored_customers(db)
    assert fake_auth.users[user_id].user_stripe_id == row.user_stripe_id
    if not db.is_sqlite:
        # PostgreSQL's advisory lock queues the replicas: Stripe is asked exactly once. SQLite
        # processes may both ask, and Stripe's idempotency key returns the same customer.
        assert len(sandbox.posts(CUSTOMERS)) == 1


async def test_when_auth_fails_after_stripe_the_next_call_finishes_with_the_same_customer(
    client: httpx.AsyncClient,
    fake_auth: FakeAuth,
    sandbox: InProcessSandbox,
    db: Database,
) -> None:
    user_id = fake_auth.add_user()
    fake_auth.fail_stores = 1

    failed = await client.post("/billing/customer", headers=as_user(user_id))

    assert failed.status_code == 503
    assert failed.headers["content-type"] == PROBLEM_MEDIA_TYPE
    [row] = await stored_customers(db)
    assert row.stored_in_auth_at is None
    assert fake_auth.users[user_id].user_stripe_id is None

    retried = await client.post("/billing/customer", headers=as_user(user_id))

    assert retried.status_code == 201
    assert retried.json()["user_stripe_id"] == row.user_stripe_id
    assert fake_auth.users[user_id].user_stripe_id == row.user_stripe_id
    assert len(sandbox.posts(CUSTOMERS)) == 1
    [row] = await stored_customers(db)
    assert row.stored_in_auth_at is not None


async def test_put_stripe_customer_accepts_the_id_facturation_created_for_this_user(
    client: httpx.AsyncClient, fake_auth: FakeAuth, db: Database
) -> None:
    user_id = fake_auth.add_user()
    fake_auth.fail_stores = 1  # the customer exists in facturation, not yet in auth
    assert (await client.post("/billing/customer", headers=as_user(user_id))).status_code == 503
    [row] = await stored_customers(db)

    response = await client.put(
        "/users/me/stripe-customer",
        json={"user_stripe_id": row.user_stripe_id},
        headers=as_user(user_id),
    )
    again = await client.put(
        "/users/me/stripe-customer",
        json={"user_stripe_id": row.user_stripe_id},
        headers=as_user(user_id),
    )

    assert response.status_code == 200
    assert again.status_code == 200
    assert response.json() == {"user_id": user_id, "user_stripe_id": row.user_stripe_id}
    assert fake_auth.users[user_id].user_stripe_id == row.user_stripe_id
    [row] = await stored_customers(db)
    assert row.stored_in_auth_at is not None


@pytest.mark.parametrize("own_customer", [True, False])
async def test_put_stripe_customer_refuses_any_other_id_with_409(
    client: httpx.AsyncClient, fake_auth: FakeAuth, own_customer: bool
) -> None:
    user_id = fake_auth.add_user()
    someone_else = fake_auth.add_user()
    other_id = (await client.post("/billing/customer", headers=as_user(someone_else))).json()[
        "user_stripe_id"
    ]
    if own_customer:
        await client.post("/billing/customer", headers=as_user(user_id))
    before = fake_auth.users[user_id].user_stripe_id

    response = await client.put(
        "/users/me/stripe-customer", json={"user_stripe_id": other_id}, headers=as_user(user_id)
    )

    assert response.status_code == 409
    assert response.headers["content-type"] == PROBLEM_MEDIA_TYPE
    assert fake_auth.users[user_id].user_stripe_id == before


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("POST", "/billing/customer"),
        ("POST", "/basket/validate"),
        ("POST", "/billing/checkout-sessions"),
        ("GET", "/billing/checkout-sessions/cs_test_1"),
        ("PUT", "/users/me/stripe-customer"),
    ],
)
async def test_routes_that_need_a_user_answer_401_without_identity(
    client: httpx.AsyncClient, sandbox: InProcessSandbox, method: str, path: str
) -> None:
    body = {"items": [{"product_id": "pro-month", "quantity": 1}], "user_stripe_id": "cus_x"}
    response = await client.request(method, path, json=body if method != "GET" else None)

    assert response.status_code == 401
    assert response.headers["content-type"] == PROBLEM_MEDIA_TYPE
    assert list(sandbox.requests) == []


async def test_every_route_requires_the_internal_credential(
    client: httpx.AsyncClient, fake_auth: FakeAuth
) -> None:
    user_id = fake_auth.add_user()
    del client.headers[INTERNAL_TOKEN_HEADER]

    products = await client.get("/products")
    customer = await client.post("/billing/customer", headers=as_user(user_id))

    assert products.status_code == 401
    assert customer.status_code == 401


def test_known_customers_forget_the_oldest_entry_when_full() -> None:
    known = KnownCustomers(max_entries=2)
    known.put("u1", "cus_1")
    known.put("u2", "cus_2")
    known.put("u3", "cus_3")

    assert (known.get("u1"), known.get("u2"), known.get("u3")) == (None, "cus_2", "cus_3")


async def test_a_customer_is_remembered_only_once_auth_holds_it(
    db: Database, fake_auth: FakeAuth, stripe_api: StripeApi
) -> None:
    known = KnownCustomers()
    customers = Customers(db, stripe_api, fake_auth, locks=UserLocks(), known=known)
    user_id = fake_auth.add_user()
    fake_auth.fail_stores = 1

    with pytest.raises(ServiceUnavailableError):
        await customers.ensure_customer(user_id)
    remembered_before = known.get(user_id)
    completed = await customers.ensure_customer(user_id)

    assert remembered_before is None
    assert known.get(user_id) == completed.user_stripe_id
