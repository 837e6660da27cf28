from __future__ import annotations

import asyncio

import httpx
import pytest
import stripe

from tests.unit.stripe_sandbox.conftest import API_KEY

PARAMS: stripe.params.CustomerCreateParams = {
    "email": "ada@example.com",
    "metadata": {"user_id": "user-1"},
}


async def test_same_key_and_parameters_replay_the_same_customer(
    client: stripe.StripeClient, sandbox_url: str
) -> None:
    first = await client.v1.customers.create_async(
        params=PARAMS,
        options={"idempotency_key": "customer-user-1"},
    )
    second = await client.v1.customers.create_async(
        params=PARAMS,
        options={"idempotency_key": "customer-user-1"},
    )
    assert second.to_dict() == first.to_dict()
    listed = await client.v1.customers.list_async(params={"email": "ada@example.com"})
    assert [customer.id for customer in listed.data] == [first.id]


async def test_twenty_concurrent_requests_with_one_key_create_one_customer(
    client: stripe.StripeClient,
) -> None:
    customers = await asyncio.gather(
        *(
            client.v1.customers.create_async(
                params=PARAMS,
                options={"idempotency_key": "customer-user-1"},
            )
            for _ in range(20)
        )
    )
    assert len({customer.id for customer in customers}) == 1
    listed = await client.v1.customers.list_async(params={"email": "ada@example.com"})
    assert len(listed.data) == 1


async def test_replay_is_flagged_and_names_the_original_request(sandbox_url: str) -> None:
    headers = {"Authorization": f"Bearer {API_KEY}", "Idempotency-Key": "k-1"}
    async with httpx.AsyncClient(base_url=sandbox_url, headers=headers) as http:
        first = await http.post("/v1/customers", data={"email": "a@example.com"})
        second = await http.post("/v1/customers", data={"email": "a@example.com"})
    assert first.json() == second.json()
    assert "idempotent-replayed" not in first.headers
    assert second.headers["idempotent-replayed"] == "true"
    assert second.headers["original-request"] == first.headers["request-id"]


async def test_same_key_with_other_parameters_raises_idempotency_error(
    client: stripe.StripeClient,
) -> None:
    await client.v1.customers.create_async(
        params={"email": "a@example.com"}, options={"idempotency_key": "k-2"}
    )
    with pytest.raises(stripe.IdempotencyError):
        await client.v1.customers.create_async(
            params={"email": "b@example.com"}, options={"idempotency_key": "k-2"}
        )


async def test_same_key_on_another_endpoint_raises_idempotency_error(
    client: stripe.StripeClient,
) -> None:
    customer = await client.v1.customers.create_async(
        params={"email": "a@example.com"}, options={"idempotency_key": "k-3"}
    )
    with pytest.raises(stripe.IdempotencyError):
        await client.v1.customers.update_async(
            customer.id, params={"name": "A"}, options={"idempotency_key": "k-3"}
        )


async def test_a_failed_request_is_not_replayed_so_a_retry_can_succeed(
    client: stripe.StripeClient,
) -> None:
    with pytest.raises(stripe.InvalidRequestError):
        await client.v1.customers.create_async(
            params={"email": "not-an-email"}, options={"idempotency_key": "k-4"}
        )
    with pytest.raises(stripe.InvalidRequestError):
        await client.v1.customers.create_async(
            params={"email": "not-an-email"}, options={"idempotency_key": "k-4"}
        )
