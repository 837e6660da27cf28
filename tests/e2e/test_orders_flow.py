"""Orders end to end, through the real gateway, facturation and the Stripe sandbox as processes:
pay -> entitlement -> partial refund by the operations route -> the rest refunded "from the
Dashboard" -> refunded and revoked; a lost dispute revokes; with the sandbox's webhooks off, the
return page alone fulfils the order."""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
import pytest_asyncio

from shared import INTERNAL_TOKEN_HEADER
from tests.e2e.conftest import AUTH_ENV, User, new_user
from tests.support.polling import eventually
from tests.support.processes import ServiceProcess
from tests.support.sandbox_process import facturation_env, sandbox_process
from tests.support.stack import Stack, start_stack

WEBHOOK_SECRET = "whsec_" + secrets.token_hex(24)
STRIPE_SECRET_KEY = "sk_test_e2e_" + secrets.token_hex(8)
DASHBOARD = {"Authorization": f"Bearer {STRIPE_SECRET_KEY}"}


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def sandbox(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[ServiceProcess]:
    """The Stripe sandbox, its own webhook delivery off until a test turns it on."""
    async with sandbox_process(tmp_path_factory.mktemp("sandbox"), WEBHOOK_SECRET) as process:
        yield process


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def stack(
    tmp_path_factory: pytest.TempPathFactory, sandbox: ServiceProcess
) -> AsyncIterator[Stack]:
    async with start_stack(
        tmp_path_factory.mktemp("stack"),
        facturation_url="start",
        auth_env=AUTH_ENV,
        facturation_env=facturation_env(sandbox, STRIPE_SECRET_KEY, WEBHOOK_SECRET),
    ) as running:
        yield running


async def webhooks_to(sandbox: ServiceProcess, url: str) -> None:
    async with httpx.AsyncClient(base_url=sandbox.url, timeout=10) as http:
        configured = await http.post("/sandbox/config", json={"webhook_url": url})
    assert configured.status_code == 200, configured.text


async def buy_and_pay(http: httpx.AsyncClient, sandbox: ServiceProcess, buyer: User) -> Any:
    """A paid checkout of one product; the sandbox's answer to paying it."""
    created = await http.post(
        "/api/v1/billing/checkout-sessions",
        json={"items": [{"product_id": "pro-month", "quantity": 1}]},
        headers=buyer.bearer,
    )
    assert created.status_code == 201, created.text
    async with httpx.AsyncClient(base_url=sandbox.url, timeout=10) as stripe_sandbox:
        paid = await stripe_sandbox.post(
            f"/sandbox/checkout/sessions/{created.json()['id']}/complete",
            json={"client_secret": created.json()["client_secret"]},
        )
    assert paid.status_code == 200, paid.text
    return {**created.json(), "payment_intent": paid.json()["payment_intent"]}


async def entitlements(http: httpx.AsyncClient, buyer: User, every: bool = False) -> list[Any]:
    params = {"status": "all"} if every else {}
    page = await http.get("/api/v1/billing/entitlements", params=params, headers=buyer.bearer)
    assert page.status_code == 200, page.text
    return [(item["product_id"], item["status"]) for item in page.json()["data"]]


@pytest.mark.asyncio(loop_scope="module")
async def test_paid_then_refunded_in_two_steps_ends_refunded_with_access_revoked(
    stack: Stack, sandbox: ServiceProcess
) -> None:
    await webhooks_to(sandbox, f"{stack.url}/webhooks/stripe")
    async with httpx.AsyncClient(base_url=stack.url, timeout=10) as http:
        buyer = await new_user(http)
        bought = await buy_and_pay(http, sandbox, buyer)
        order_id, total = bought["order_id"], bought["amount_total"]

        granted = await eventually(lambda: entitlements(http, buyer))
        assert granted == [("pro-month", "active")]

        through_gateway = await http.post(
            f"/internal/v1/orders/{order_id}/refunds",
            json={"amount": 100},
            headers={"Idempotency-Key": "e2e-gateway"},
        )
        assert through_gateway.status_code == 404

        async with httpx.AsyncClient(base_url=stack.facturation_url, timeout=10) as ops:
            partial = await ops.post(
                f"/internal/v1/orders/{order_id}/refunds",
                json={"amount": total // 4, "reason": "requested_by_customer"},
                headers={INTERNAL_TOKEN_HEADER: stack.internal_token, "Idempotency-Key": "e2e-1"},
            )
        assert partial.status_code == 201, partial.text
        assert partial.json()["id"].startswith("re_")

        async def order_is(status: str) -> Any:
            page = await http.get(f"/api/v1/billing/orders/{order_id}", headers=buyer.bearer)
            return page.json() if page.json()["status"] == status else None

        assert await eventually(lambda: order_is("partially_refunded"))
        assert await entitlements(http, buyer) == [("pro-month", "active")]

        async with httpx.AsyncClient(base_url=sandbox.url, timeout=10) as dashboard:
            rest = await dashboard.post(
                "/v1/refunds", data={"payment_intent": bought["payment_intent"]}, headers=DASHBOARD
            )
        assert rest.status_code == 200, rest.text
        assert rest.json()["amount"] == total - total // 4

        refunded = await eventually(lambda: order_is("refunded"))
        assert refunded is not None
        assert refunded["amount_refunded"] == total
        assert await entitlements(http, buyer) == []
        assert await entitlements(http, buyer, every=True) == [("pro-month", "revoked")]
        listed = await http.get("/api/v1/billing/orders", headers=buyer.bearer)
        assert [(o["id"], o["status"]) for o in listed.json()["data"]] == [(order_id, "refunded")]


@pytest.mark.asyncio(loop_scope="module")
async def test_a_lost_dispute_revokes_the_products_of_the_order(
    stack: Stack, sandbox: ServiceProcess
) -> None:
    await webhooks_to(sandbox, f"{stack.url}/webhooks/stripe")
    async with httpx.AsyncClient(base_url=stack.url, timeout=10) as http:
        buyer = await new_user(http)
        bought = await buy_and_pay(http, sandbox, buyer)
        assert await eventually(lambda: entitlements(http, buyer)) == [("pro-month", "active")]

        async with httpx.AsyncClient(base_url=sandbox.url, timeout=10) as stripe_sandbox:
            intent = await stripe_sandbox.get(
                f"/v1/payment_intents/{bought['payment_intent']}", headers=DASHBOARD
            )
            disputed = await stripe_sandbox.post(
                f"/sandbox/charges/{intent.json()['latest_charge']}/dispute",
                json={"outcome": "lost"},
            )
        assert disputed.status_code == 200, disputed.text

        async def revoked() -> Any:
            return await entitlements(http, buyer, every=True) == [("pro-month", "revoked")]

        assert await eventually(revoked)


@pytest.mark.asyncio(loop_scope="module")
async def test_with_the_sandboxs_webhooks_off_the_return_page_alone_fulfils_the_order(
    stack: Stack, sandbox: ServiceProcess
) -> None:
    await webhooks_to(sandbox, "")
    async with httpx.AsyncClient(base_url=stack.url, timeout=10) as http:
        buyer = await new_user(http)
        bought = await buy_and_pay(http, sandbox, buyer)

        status = await http.get(
            f"/api/v1/billing/checkout-sessions/{bought['id']}", headers=buyer.bearer
        )

        assert status.status_code == 200, status.text
        assert (status.json()["order_id"], status.json()["order_status"]) == (
            bought["order_id"],
            "paid",
        )
        assert await entitlements(http, buyer) == [("pro-month", "active")]
