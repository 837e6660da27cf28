"""Facturation's client of auth's private routes: what it sends and how auth's answers map."""

from __future__ import annotations

from collections.abc import Callable

import httpx
import pytest

from facturation_service.auth_client import AuthClient, AuthUser
from shared import (
    BadGatewayError,
    ConflictError,
    GatewayTimeoutError,
    NotFoundError,
    ProblemError,
    ServiceUnavailableError,
)

USER = {"id": "u-1", "email": "a@example.com", "name": "A", "user_stripe_id": None}


def auth_client(handler: Callable[[httpx.Request], httpx.Response]) -> AuthClient:
    client = AuthClient("http://auth.test", "internal-secret")
    # Same hooks and base URL as in production; only the network is replaced.
    client.http._transport = httpx.MockTransport(handler)
    return client


async def test_get_user_sends_the_internal_credential_to_the_private_route() -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, json=USER)

    user = await auth_client(handler).get_user("u-1")

    assert user == AuthUser(id="u-1", email="a@example.com", name="A", user_stripe_id=None)
    assert seen[0].url == "http://auth.test/internal/v1/users/u-1"
    assert seen[0].headers["x-internal-token"] == "internal-secret"


async def test_store_stripe_customer_puts_the_id() -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, json={**USER, "user_stripe_id": "cus_1"})

    user = await auth_client(handler).store_stripe_customer("u-1", "cus_1")

    assert user.user_stripe_id == "cus_1"
    assert seen[0].method == "PUT"
    assert seen[0].url.path == "/internal/v1/users/u-1/stripe-customer"
    assert seen[0].content == b'{"user_stripe_id":"cus_1"}'


@pytest.mark.parametrize(
    ("answer", "expected"),
    [
        (httpx.Response(404, json={"status": 404}), NotFoundError),
        (httpx.Response(409, json={"status": 409}), ConflictError),
        (httpx.Response(500, json={"status": 500}), BadGatewayError),
        (httpx.Response(200, content=b"not json"), BadGatewayError),
        (httpx.Response(200, json={"email": "missing id"}), BadGatewayError),
        (httpx.ReadTimeout("slow"), GatewayTimeoutError),
        (httpx.ConnectError("refused"), ServiceUnavailableError),
    ],
)
async def test_auth_answers_and_failures_map_to_problems(
    answer: httpx.Response | Exception, expected: type[ProblemError]
) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        if isinstance(answer, Exception):
            raise answer
        return answer

    with pytest.raises(expected):
        await auth_client(handler).store_stripe_customer("u-1", "cus_1")
