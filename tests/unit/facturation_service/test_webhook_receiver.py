"""The receiver: real ``Stripe-Signature`` headers over full Stripe events, against the app on a
migrated database (SQLite, or PostgreSQL with TEST_DATABASE_URL)."""

from __future__ import annotations

import asyncio
import time

import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient
from sqlalchemy import text

from shared import PROBLEM_MEDIA_TYPE, Database
from tests.support import stripe_events
from tests.support.webhook_app import (
    OLD_WEBHOOK_SECRET,
    count_events,
    count_invoices,
    get_event,
    get_invoice,
    post_event,
    wait_until,
)


async def test_a_signed_event_is_journaled_once_and_acknowledged_before_processing(
    webhook_client: AsyncTestClient[Litestar], db: Database
) -> None:
    invoice = stripe_events.invoice("paid")
    event = stripe_events.event("invoice.paid", invoice)

    response = await post_event(webhook_client, event)

    assert response.status_code == 200
    assert response.json() == {"id": event["id"], "duplicate": False, "handled": True}
    assert await count_events(db, event["id"]) == 1
    stored = await wait_until(lambda: get_event(db, event["id"]), status="processed")
    assert stored.type == "invoice.paid"
    assert stored.api_version == stripe_events.API_VERSION
    assert stored.created == event["created"]
    assert stored.livemode is False
    assert stored.payload == stripe_events.encode(event).decode()
    assert stored.attempts == 1


async def test_twenty_concurrent_deliveries_store_one_event_and_one_invoice(
    webhook_client: AsyncTestClient[Litestar], db: Database
) -> None:
    invoice = stripe_events.invoice("paid")
    event = stripe_events.event("invoice.paid", invoice)
    body, headers = stripe_events.signed_request(event)

    responses = await asyncio.gather(
        *(webhook_client.post("/webhooks/stripe", content=body, headers=headers) for _ in range(20))
    )

    assert [response.status_code for response in responses] == [200] * 20
    assert sum(not response.json()["duplicate"] for response in responses) == 1
    await wait_until(lambda: get_event(db, event["id"]), status="processed")
    assert await count_events(db) == 1
    assert await count_invoices(db) == 1
    stored = await get_invoice(db, invoice["id"])
    assert stored is not None
    assert stored.status == "paid"


async def test_a_secret_being_rotated_out_still_verifies(
    webhook_client: AsyncTestClient[Litestar], db: Database
) -> None:
    event = stripe_events.event("invoice.created", stripe_events.invoice("draft"))

    response = await post_event(webhook_client, event, secret=OLD_WEBHOOK_SECRET)

    assert response.status_code == 200
    assert await count_events(db, event["id"]) == 1


async def _assert_refused(response: object, db: Database) -> None:
    assert getattr(response, "status_code", None) == 400
    assert response.headers["content-type"].startswith(PROBLEM_MEDIA_TYPE)  # type: ignore[attr-defined]
    body = response.json()  # type: ignore[attr-defined]
    assert body["status"] == 400
    assert "Stripe-Signature" in body["detail"] or "Stripe event" in body["detail"]
    assert await count_events(db) == 0


async def test_a_signature_from_an_unknown_secret_is_refused_and_stores_nothing(
    webhook_client: AsyncTestClient[Litestar], db: Database
) -> None:
    event = stripe_events.event("invoice.paid", stripe_events.invoice("paid"))

    response = await post_event(webhook_client, event, secret="whsec_someone_else_entirely_000000")

    await _assert_refused(response, db)


async def test_a_stale_timestamp_is_refused_and_stores_nothing(
    webhook_client: AsyncTestClient[Litestar], db: Database
) -> None:
    event = stripe_events.event("invoice.paid", stripe_events.invoice("paid"))

    response = await post_event(webhook_client, event, timestamp=int(time.time()) - 301)

    await _assert_refused(response, db)
    assert "tolerance" in response.json()["detail"]


async def test_a_body_altered_after_signing_is_refused_and_stores_nothing(
    webhook_client: AsyncTestClient[Litestar], db: Database
) -> None:
    invoice = stripe_events.invoice("paid")
    event = stripe_events.event("invoice.paid", invoice)
    body, headers = stripe_events.signed_request(event)
    altered = body.replace(f'"amount_paid": {invoice["amount_paid"]}'.encode(), b'"amount_paid": 1')
    assert altered != body

    response = await webhook_client.post("/webhooks/stripe", content=altered, headers=headers)

    await _assert_refused(response, db)


@pytest.mark.parametrize(
    "signature",
    [None, "", "garbage", "t=notanumber,v1=abc", "t=1700000000", "v1=deadbeef"],
    ids=["missing", "empty", "garbage", "bad-timestamp", "no-v1", "no-timestamp"],
)
async def test_a_missing_or_malformed_signature_is_refused_and_stores_nothing(
    webhook_client: AsyncTestClient[Litestar], db: Database, signature: str | None
) -> None:
    body = stripe_events.encode(stripe_events.event("invoice.paid", stripe_events.invoice("paid")))
    headers = {"Content-Type": "application/json"}
    if signature is not None:
        headers["Stripe-Signature"] = signature

    response = await webhook_client.post("/webhooks/stripe", content=body, headers=headers)

    await _assert_refused(response, db)


async def test_a_validly_signed_event_without_the_internal_credential_is_refused(
    webhook_client: AsyncTestClient[Litestar], db: Database
) -> None:
    # Only the gateway reaches facturation: the signature alone does not open the private route.
    body, headers = stripe_events.signed_request(
        stripe_events.event("invoice.paid", stripe_events.invoice("paid"))
    )
    del webhook_client.headers["X-Internal-Token"]

    response = await webhook_client.post("/webhooks/stripe", content=body, headers=headers)

    assert response.status_code == 401
    assert response.headers["content-type"] == PROBLEM_MEDIA_TYPE
    assert await count_events(db) == 0


async def test_a_signed_body_that_is_not_an_event_is_refused(
    webhook_client: AsyncTestClient[Litestar], db: Database
) -> None:
    body = b'{"object": "event", "type": "invoice.paid"}'
    headers = {"Stripe-Signature": stripe_events.sign(body)}

    response = await webhook_client.post("/webhooks/stripe", content=body, headers=headers)

    await _assert_refused(response, db)


async def test_other_event_types_are_journaled_as_ignored(
    webhook_client: AsyncTestClient[Litestar], db: Database
) -> None:
    event = stripe_events.customer_event("customer.updated")

    response = await post_event(webhook_client, event)

    assert response.status_code == 200
    assert response.json()["handled"] is False
    stored = await get_event(db, event["id"])
    assert stored is not None
    assert stored.status == "ignored"


async def test_when_the_journal_cannot_be_written_the_answer_is_5xx_so_stripe_retries(
    webhook_client: AsyncTestClient[Litestar], db: Database
) -> None:
    async with db.engine.begin() as connection:
        await connection.execute(text("DROP TABLE webhook_events"))
    event = stripe_events.event("invoice.paid", stripe_events.invoice("paid"))

    response = await post_event(webhook_client, event)

    assert response.status_code == 503
    assert response.headers["content-type"].startswith(PROBLEM_MEDIA_TYPE)


async def test_a_signed_event_with_an_id_too_long_for_the_journal_is_refused(
    webhook_client: AsyncTestClient[Litestar], db: Database
) -> None:
    event = stripe_events.event("invoice.paid", stripe_events.invoice("paid"))
    event["id"] = "evt_" + "x" * 300

    response = await post_event(webhook_client, event)

    await _assert_refused(response, db)
