"""Catch-up and the billing switch on real processes (flows 9 and 11): the gateway, auth and
facturation against the Stripe sandbox, whose webhook deliveries are turned off and on."""

from __future__ import annotations

import asyncio
import secrets
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import httpx
import pytest
import pytest_asyncio
from sqlalchemy import select

from facturation_service.models import Order
from shared import INTERNAL_TOKEN_HEADER, Database
from tests.e2e.conftest import AUTH_ENV, User, new_user
from tests.support.processes import ServiceProcess
from tests.support.sandbox_process import facturation_env
from tests.support.stack import Stack, start_stack

WEBHOOK_SECRET = "whsec_" + secrets.token_hex(24)
STRIPE_SECRET_KEY = "sk_test_e2e_" + secrets.token_hex(8)
PAYMENTS = 4
EVENTS_PER_PAYMENT = 5  # checkout.session.completed and four invoice.* events


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def sandbox(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[ServiceProcess]:
    process = ServiceProcess(
        "stripe_sandbox",
        {
            "SANDBOX_WEBHOOK_URL": "",
            "STRIPE_WEBHOOK_SECRET": WEBHOOK_SECRET,
            "SANDBOX_WEBHOOK_RETRY_BASE_MS": "100",
            "LOG_LEVEL": "WARNING",
        },
        tmp_path_factory.mktemp("sandbox"),
    )
    await asyncio.to_thread(process.start)
    yield process
    await asyncio.to_thread(process.stop)


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def stack(
    tmp_path_factory: pytest.TempPathFactory, sandbox: ServiceProcess
) -> AsyncIterator[Stack]:
    async with start_stack(
        tmp_path_factory.mktemp("stack"),
        facturation_url="start",
        auth_env=AUTH_ENV,
        facturation_env={
            **facturation_env(sandbox, STRIPE_SECRET_KEY, WEBHOOK_SECRET),
            "FACTURATION_CATCHUP_SECONDS": "0",
        },
    ) as running:
        yield running


async def eventually(check: Callable[[], Awaitable[bool]], *, within: float = 20.0) -> None:
    deadline = time.monotonic() + within
    while not await check():
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached in time")
        await asyncio.sleep(0.2)


async def open_checkout(http: httpx.AsyncClient, user: User) -> dict[str, Any]:
    response = await http.post(
        "/api/v1/billing/checkout-sessions",
        json={"items": [{"product_id": "pro-month", "quantity": 1}]},
        headers=user.bearer,
    )
    assert response.status_code == 201, response.text
    return dict(response.json())


async def pay(sandbox: httpx.AsyncClient, created: dict[str, Any]) -> None:
    paid = await sandbox.post(
        f"/sandbox/checkout/sessions/{created['id']}/complete",
        json={"client_secret": created["client_secret"]},
    )
    assert paid.status_code == 200, paid.text


async def orders(stack: Stack) -> dict[str, str]:
    """Every order's status by checkout session, read straight from facturation's database."""
    assert stack.facturation is not None
    database = Database(stack.facturation.env["FACTURATION_DATABASE_URL"])
    try:
        async with database.sessionmaker() as session:
            rows = (
                await session.execute(select(Order.stripe_checkout_session_id, Order.status))
            ).all()
    finally:
        await database.dispose()
    return {str(session_id): status for session_id, status in rows}


async def journal(stack: Stack, facturation_url: str | None = None) -> list[dict[str, Any]]:
    async with httpx.AsyncClient(base_url=facturation_url or stack.facturation_url) as private:
        response = await private.get(
            "/internal/v1/webhook-events",
            params={"limit": 500},
            headers={INTERNAL_TOKEN_HEADER: stack.internal_token},
        )
    assert response.status_code == 200, response.text
    return list(response.json()["data"])


@pytest.mark.asyncio(loop_scope="module")
async def test_missed_deliveries_are_caught_up_once_and_resending_them_doubles_nothing(
    stack: Stack, sandbox: ServiceProcess, tmp_path_factory: pytest.TempPathFactory
) -> None:
    assert stack.facturation is not None
    # A second replica on the same database: both run catch-up at once.
    replica = ServiceProcess(
        "facturation_service", stack.facturation.env, tmp_path_factory.mktemp("replica")
    )
    await asyncio.to_thread(replica.start)
    try:
        async with (
            httpx.AsyncClient(base_url=stack.url, timeout=10) as http,
            httpx.AsyncClient(base_url=sandbox.url, timeout=10) as stripe_sandbox,
        ):
            buyer = await new_user(http)
            sessions = [await open_checkout(http, buyer) for _ in range(PAYMENTS)]
            for created in sessions:
                await pay(stripe_sandbox, created)
            await asyncio.sleep(1.0)
            assert set((await orders(stack)).values()) == {"pending_payment"}
            assert (await http.get("/api/v1/billing/invoices", headers=buyer.bearer)).json()[
                "data"
            ] == []

            async with httpx.AsyncClient(timeout=30) as ops:
                passes = await asyncio.gather(
                    *(
                        ops.post(
                            f"{url}/internal/v1/catch-up",
                            headers={INTERNAL_TOKEN_HEADER: stack.internal_token},
                        )
                        for url in (stack.facturation_url, replica.url)
                    )
                )

            async def all_paid_and_invoiced() -> bool:
                statuses = await orders(stack)
                listed = (await http.get("/api/v1/billing/invoices", headers=buyer.bearer)).json()[
                    "data"
                ]
                return (
                    set(statuses.values()) == {"paid"}
                    and len(listed) == PAYMENTS
                    and all(item["status"] == "paid" for item in listed)
                )

            await eventually(all_paid_and_invoiced)
            caught_up = await journal(stack)

            configured = await stripe_sandbox.post(
                "/sandbox/config", json={"webhook_url": f"{stack.url}/webhooks/stripe"}
            )
            assert configured.status_code == 200
            events = (await stripe_sandbox.get("/sandbox/events")).json()["data"]
            for event in events:
                resent = await stripe_sandbox.post(f"/sandbox/events/{event['id']}/resend")
                assert resent.status_code == 202

            async def all_delivered() -> bool:
                listed = (await stripe_sandbox.get("/sandbox/events")).json()["data"]
                return {item["delivery"]["status"] for item in listed} == {"delivered"}

            await eventually(all_delivered)
            await asyncio.sleep(0.5)
            after_resend = await journal(stack)
            invoices = (await http.get("/api/v1/billing/invoices", headers=buyer.bearer)).json()
    finally:
        await asyncio.to_thread(replica.stop)

    statuses = sorted(response.status_code for response in passes)
    assert statuses in ([200, 200], [200, 409]), [response.text for response in passes]
    recorded = sum(
        response.json()["recorded"] for response in passes if response.status_code == 200
    )
    assert recorded == PAYMENTS * EVENTS_PER_PAYMENT
    assert len(events) == PAYMENTS * EVENTS_PER_PAYMENT
    assert sorted(entry["id"] for entry in caught_up) == sorted(event["id"] for event in events)
    assert sorted(entry["id"] for entry in after_resend) == sorted(e["id"] for e in events)
    assert {entry["status"] for entry in after_resend} == {"processed"}
    assert {entry["attempts"] for entry in after_resend} == {1}
    assert len(invoices["data"]) == PAYMENTS
    assert set((await orders(stack)).values()) == {"paid"}


async def restart_facturation(stack: Stack, mode: str) -> ServiceProcess:
    """Facturation again on the same port and database, in another billing mode."""
    assert stack.facturation is not None
    await asyncio.to_thread(stack.facturation.stop)
    process = ServiceProcess(
        "facturation_service",
        {**stack.facturation.env, "BILLING_MODE": mode},
        stack.facturation.log_path.parent,
        port=stack.facturation.port,
    )
    await asyncio.to_thread(process.start)
    stack.facturation = process
    return process


@pytest.mark.asyncio(loop_scope="module")
async def test_read_only_then_off_then_on_holds_nothing_back_and_applies_it_once(
    stack: Stack, sandbox: ServiceProcess
) -> None:
    async with (
        httpx.AsyncClient(base_url=stack.url, timeout=10) as http,
        httpx.AsyncClient(base_url=sandbox.url, timeout=10) as stripe_sandbox,
    ):
        configured = await stripe_sandbox.post(
            "/sandbox/config", json={"webhook_url": f"{stack.url}/webhooks/stripe"}
        )
        assert configured.status_code == 200
        buyer = await new_user(http)
        during_read_only, during_off = [await open_checkout(http, buyer) for _ in range(2)]
        try:
            facturation = await restart_facturation(stack, "read_only")
            refused = await http.post(
                "/api/v1/billing/checkout-sessions",
                json={"items": [{"product_id": "pro-month", "quantity": 1}]},
                headers=buyer.bearer,
            )
            health = (await http.get(f"{facturation.url}/healthz")).json()
            await pay(stripe_sandbox, during_read_only)

            async def read_only_order_paid() -> bool:
                return (await orders(stack))[during_read_only["id"]] == "paid"

            await eventually(read_only_order_paid)
            reads = await http.get("/api/v1/billing/invoices", headers=buyer.bearer)

            facturation = await restart_facturation(stack, "off")
            refused_off = await http.post("/api/v1/billing/customer", headers=buyer.bearer)
            await pay(stripe_sandbox, during_off)

            async def delivered() -> bool:
                listed = (await stripe_sandbox.get("/sandbox/events")).json()["data"]
                return {item["delivery"]["status"] for item in listed} == {"delivered"}

            await eventually(delivered)
            await asyncio.sleep(1.0)
            held = [entry for entry in await journal(stack) if entry["status"] == "pending"]
            off_order = (await orders(stack))[during_off["id"]]

            await restart_facturation(stack, "on")

            async def off_order_paid() -> bool:
                return (await orders(stack))[during_off["id"]] == "paid"

            await eventually(off_order_paid)
            await asyncio.sleep(0.5)
            final = {entry["id"]: entry for entry in await journal(stack)}
            invoices = (await http.get("/api/v1/billing/invoices", headers=buyer.bearer)).json()
        finally:
            assert stack.facturation is not None
            await asyncio.to_thread(stack.facturation.stop)

    assert refused.status_code == 503
    assert refused.headers["content-type"].startswith("application/problem+json")
    assert refused.headers["retry-after"] == "60"
    assert health["billing_mode"] == "read_only"
    assert reads.status_code == 200
    assert refused_off.status_code == 503
    assert off_order == "pending_payment"
    assert len(held) == EVENTS_PER_PAYMENT
    for entry in held:
        assert (final[entry["id"]]["status"], final[entry["id"]]["attempts"]) == ("processed", 1)
    assert sorted(item["status"] for item in invoices["data"]) == ["paid", "paid"]
