from __future__ import annotations

import asyncio
import uuid
from typing import Any

import pytest
from litestar.testing import AsyncTestClient

from shared import PROBLEM_MEDIA_TYPE
from tests.unit.auth_service.conftest import register


def stripe_customer_path(user_id: str) -> str:
    return f"/internal/v1/users/{user_id}/stripe-customer"


async def test_get_user_answers_the_user(client: AsyncTestClient[Any]) -> None:
    user = (await register(client)).json()
    response = await client.get(f"/internal/v1/users/{user['id']}")
    assert response.status_code == 200
    assert response.json() == user


@pytest.mark.parametrize("user_id", [str(uuid.uuid4()), "not-a-uuid"])
async def test_get_unknown_user_is_not_found(client: AsyncTestClient[Any], user_id: str) -> None:
    response = await client.get(f"/internal/v1/users/{user_id}")
    assert response.status_code == 404
    assert response.headers["content-type"] == PROBLEM_MEDIA_TYPE


async def test_stripe_customer_is_set_once_and_the_same_value_again_is_accepted(
    client: AsyncTestClient[Any],
) -> None:
    user = (await register(client)).json()
    path = stripe_customer_path(user["id"])
    first = await client.put(path, json={"user_stripe_id": "cus_A1"})
    assert first.status_code == 200
    assert first.json() == {**user, "user_stripe_id": "cus_A1"}
    again = await client.put(path, json={"user_stripe_id": "cus_A1"})
    assert again.status_code == 200
    assert again.json()["user_stripe_id"] == "cus_A1"
    stored = await client.get(f"/internal/v1/users/{user['id']}")
    assert stored.json()["user_stripe_id"] == "cus_A1"


async def test_a_different_stripe_customer_is_a_conflict_and_changes_nothing(
    client: AsyncTestClient[Any],
) -> None:
    user = (await register(client)).json()
    path = stripe_customer_path(user["id"])
    await client.put(path, json={"user_stripe_id": "cus_A1"})
    response = await client.put(path, json={"user_stripe_id": "cus_B2"})
    assert response.status_code == 409
    assert response.headers["content-type"] == PROBLEM_MEDIA_TYPE
    stored = await client.get(f"/internal/v1/users/{user['id']}")
    assert stored.json()["user_stripe_id"] == "cus_A1"


async def test_one_stripe_customer_cannot_belong_to_two_users(client: AsyncTestClient[Any]) -> None:
    ada = (await register(client, email="ada@example.com")).json()
    bob = (await register(client, email="bob@example.com")).json()
    await client.put(stripe_customer_path(ada["id"]), json={"user_stripe_id": "cus_A1"})
    response = await client.put(stripe_customer_path(bob["id"]), json={"user_stripe_id": "cus_A1"})
    assert response.status_code == 409
    stored = await client.get(f"/internal/v1/users/{bob['id']}")
    assert stored.json()["user_stripe_id"] is None


async def test_racing_different_stripe_customers_leave_exactly_one(
    client: AsyncTestClient[Any],
) -> None:
    user = (await register(client)).json()
    path = stripe_customer_path(user["id"])
    responses = await asyncio.gather(
        *(client.put(path, json={"user_stripe_id": f"cus_R{n}"}) for n in range(6))
    )
    winners = [r for r in responses if r.status_code == 200]
    assert len(winners) == 1
    assert sorted(r.status_code for r in responses) == [200, 409, 409, 409, 409, 409]
    stored = await client.get(f"/internal/v1/users/{user['id']}")
    assert stored.json()["user_stripe_id"] == winners[0].json()["user_stripe_id"]


@pytest.mark.parametrize("user_id", [str(uuid.uuid4()), "not-a-uuid"])
async def test_stripe_customer_of_an_unknown_user_is_not_found(
    client: AsyncTestClient[Any], user_id: str
) -> None:
    response = await client.put(stripe_customer_path(user_id), json={"user_stripe_id": "cus_A1"})
    assert response.status_code == 404


@pytest.mark.parametrize("value", ["", "cus_", "acct_123", "cus_ 1", "cus_" + "a" * 300])
async def test_a_malformed_stripe_customer_id_is_unprocessable(
    client: AsyncTestClient[Any], value: str
) -> None:
    user = (await register(client)).json()
    response = await client.put(stripe_customer_path(user["id"]), json={"user_stripe_id": value})
    assert response.status_code == 422
    stored = await client.get(f"/internal/v1/users/{user['id']}")
    assert stored.json()["user_stripe_id"] is None


async def test_private_user_routes_need_the_internal_credential(
    client: AsyncTestClient[Any],
) -> None:
    user = (await register(client)).json()
    del client.headers["X-Internal-Token"]
    read = await client.get(f"/internal/v1/users/{user['id']}")
    write = await client.put(stripe_customer_path(user["id"]), json={"user_stripe_id": "cus_A1"})
    assert (read.status_code, write.status_code) == (401, 401)
    assert user["email"] not in read.text
