"""Hostile input through HTTP (issue 15): every bad body, cursor or signed event is a 4xx
problem+json that stores nothing, and never fails another client's request."""

from __future__ import annotations

import asyncio
import base64
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
import pytest
from litestar import Litestar

from facturation_service.app import create_app
from shared import INTERNAL_TOKEN_HEADER, PROBLEM_MEDIA_TYPE, Database
from tests.support import stripe_events
from tests.support.webhook_app import (
    INTERNAL_TOKEN,
    count_events,
    count_invoices,
    get_event,
    wait_until,
    webhook_settings,
)

USER = "11111111-2222-4333-8444-00000000000a"
TOO_BIG_FOR_64_BITS = 2**63


def as_user(user_id: str) -> dict[str, str]:
    return {"X-User-Id": user_id, "X-User-Email": "someone@example.com"}


@asynccontextmanager
async def concurrently(app: Litestar) -> AsyncIterator[httpx.AsyncClient]:
    """The app with its lifespan on this event loop, so concurrent requests really overlap
    (Litestar's test client sends one at a time)."""
    started, stop = asyncio.Event(), asyncio.Event()

    async def lifespan() -> None:
        async with app.lifespan():  # entered and left in one task, as its task groups insist
            started.set()
            await stop.wait()

    task = asyncio.create_task(lifespan())
    waiter = asyncio.create_task(started.wait())
    await asyncio.wait([task, waiter], return_when="FIRST_COMPLETED")
    waiter.cancel()
    if task.done():
        task.result()
    try:
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app),  # type: ignore[arg-type]
            base_url="http://facturation.test",
            headers={INTERNAL_TOKEN_HEADER: INTERNAL_TOKEN},
        ) as client:
            yield client
    finally:
        stop.set()
        await task


@pytest.fixture
async def http(facturation_url: str) -> AsyncIterator[httpx.AsyncClient]:
    """The app with signing secrets and a fast worker; requests really run concurrently."""
    async with concurrently(create_app(webhook_settings(facturation_url))) as client:
        yield client


def nested(depth: int) -> bytes:
    return b'{"items":' + b"[" * depth + b"]" * depth + b"}"


def assert_problem(response: httpx.Response, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith(PROBLEM_MEDIA_TYPE)
    problem: dict[str, Any] = response.json()
    assert problem["status"] == status
    assert {"type", "title", "detail", "request_id"} <= problem.keys()
    return problem


@pytest.mark.parametrize("depth", [65, 1_000, 100_000])
async def test_a_deeply_nested_body_is_a_400_problem_on_every_json_route(
    http: httpx.AsyncClient, depth: int
) -> None:
    for path in ("/basket/validate", "/billing/checkout-sessions"):
        response = await http.post(
            path,
            content=nested(depth),
            headers={**as_user(USER), "content-type": "application/json"},
        )

        problem = assert_problem(response, 400)
        assert "nests" in problem["detail"]


async def test_a_deep_body_is_refused_whatever_content_type_it_claims(
    http: httpx.AsyncClient,
) -> None:
    response = await http.post(
        "/basket/validate",
        content=nested(5_000),
        headers={**as_user(USER), "content-type": "text/plain"},
    )

    assert_problem(response, 400)


async def test_brackets_inside_strings_do_not_count_as_nesting(http: httpx.AsyncClient) -> None:
    items = [{"product_id": "[" * 500 + '\\"{' * 100, "quantity": 1}]
    response = await http.post("/basket/validate", json={"items": items}, headers=as_user(USER))

    # The catalog does not know that product: the body was decoded and judged, not refused.
    assert_problem(response, 422)


async def test_a_body_larger_than_a_mebibyte_is_a_413_problem(http: httpx.AsyncClient) -> None:
    body = b'{"items": [], "pad": "' + b"x" * 1_048_576 + b'"}'

    response = await http.post("/basket/validate", content=body, headers=as_user(USER))

    assert_problem(response, 413)


async def test_a_chunked_body_larger_than_a_mebibyte_is_a_413_problem(
    http: httpx.AsyncClient,
) -> None:
    async def chunks() -> AsyncIterator[bytes]:
        for _ in range(20):
            yield b" " * 65_536

    response = await http.post("/basket/validate", content=chunks(), headers=as_user(USER))

    assert_problem(response, 413)


@pytest.mark.parametrize(
    "created", [str(TOO_BIG_FOR_64_BITS), str(-TOO_BIG_FOR_64_BITS - 1), "9" * 400]
)
async def test_an_invoice_cursor_outside_64_bits_is_a_400_problem(
    http: httpx.AsyncClient, created: str
) -> None:
    cursor = base64.urlsafe_b64encode(f"{created}:in_x".encode()).decode()

    response = await http.get("/billing/invoices", params={"cursor": cursor}, headers=as_user(USER))

    problem = assert_problem(response, 400)
    assert problem["detail"] == "The cursor is not one this API returned."


async def test_a_signed_event_created_outside_64_bits_is_a_400_and_is_not_stored(
    http: httpx.AsyncClient, db: Database
) -> None:
    event = stripe_events.event(
        "invoice.paid", stripe_events.invoice("paid"), created=TOO_BIG_FOR_64_BITS
    )
    body, headers = stripe_events.signed_request(event)

    response = await http.post("/webhooks/stripe", content=body, headers=headers)

    assert_problem(response, 400)
    assert await count_events(db) == 0


async def test_twenty_valid_events_sent_with_an_out_of_range_one_are_all_stored_and_answered(
    http: httpx.AsyncClient, db: Database
) -> None:
    valid = [
        stripe_events.event("customer.updated", {"id": f"cus_{n}", "object": "customer"})
        for n in range(20)
    ]
    bad = stripe_events.event(
        "customer.updated", {"id": "cus_bad", "object": "customer"}, created=TOO_BIG_FOR_64_BITS
    )
    requests = [stripe_events.signed_request(event) for event in [*valid[:10], bad, *valid[10:]]]

    responses = await asyncio.gather(
        *(
            http.post("/webhooks/stripe", content=body, headers=headers)
            for body, headers in requests
        )
    )

    statuses = [response.status_code for response in responses]
    assert statuses == [200] * 10 + [400] + [200] * 10
    assert await count_events(db) == 20
    for event in valid:
        assert await count_events(db, event["id"]) == 1


async def test_a_deeply_nested_signed_event_is_a_400_and_is_not_stored(
    http: httpx.AsyncClient, db: Database
) -> None:
    event = stripe_events.event("invoice.paid", stripe_events.invoice("paid"))
    event["data"]["object"]["metadata"] = {"deep": "DEEP"}
    body = stripe_events.encode(event).replace(b'"DEEP"', b"[" * 2_000 + b"]" * 2_000)
    headers = {"Stripe-Signature": stripe_events.sign(body), "Content-Type": "application/json"}

    response = await http.post("/webhooks/stripe", content=body, headers=headers)

    assert_problem(response, 400)
    assert await count_events(db) == 0


@pytest.mark.parametrize("field", ["amount_due", "total", "line amount", "line quantity"])
async def test_a_journaled_invoice_with_an_amount_outside_64_bits_fails_at_once_and_stores_nothing(
    http: httpx.AsyncClient, db: Database, field: str
) -> None:
    invoice = stripe_events.invoice("paid")
    if field.startswith("line "):
        invoice["lines"]["data"][0][field.removeprefix("line ")] = TOO_BIG_FOR_64_BITS
    else:
        invoice[field] = TOO_BIG_FOR_64_BITS
    event = stripe_events.event("invoice.paid", invoice)
    body, headers = stripe_events.signed_request(event)

    response = await http.post("/webhooks/stripe", content=body, headers=headers)

    assert response.status_code == 200  # journaled: Stripe need not send it again
    stored = await wait_until(lambda: get_event(db, event["id"]), status="failed")
    assert stored.attempts == 1
    assert stored.last_error.startswith("UnprocessableError:")
    assert "64-bit" in stored.last_error
    assert await count_invoices(db) == 0
