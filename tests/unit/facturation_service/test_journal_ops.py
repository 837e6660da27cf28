"""The private journal routes and the worker's Prometheus metrics."""

from __future__ import annotations

from datetime import timedelta

from litestar import Litestar
from litestar.testing import AsyncTestClient

from facturation_service import journal
from facturation_service.app import create_app
from shared import Database
from tests.support import stripe_events
from tests.support.webhook_app import (
    count_events,
    get_event,
    journal_event,
    post_event,
    wait_until,
    webhook_app_client,
    webhook_settings,
)


async def test_events_are_listed_by_status_and_type(
    webhook_client: AsyncTestClient[Litestar], db: Database
) -> None:
    paid = stripe_events.event("invoice.paid", stripe_events.invoice("paid"))
    other = stripe_events.customer_event("customer.created")
    await post_event(webhook_client, paid)
    await post_event(webhook_client, other)
    await wait_until(lambda: get_event(db, paid["id"]), status="processed")

    listing = "/internal/v1/webhook-events"
    everything = (await webhook_client.get(listing)).json()["data"]
    ignored = (await webhook_client.get(f"{listing}?status=ignored")).json()["data"]
    by_type = (await webhook_client.get(f"{listing}?type=invoice.paid")).json()["data"]

    assert {event["id"] for event in everything} == {paid["id"], other["id"]}
    assert [event["id"] for event in ignored] == [other["id"]]
    assert [(event["id"], event["status"]) for event in by_type] == [(paid["id"], "processed")]
    assert "payload" not in by_type[0]


async def test_an_unknown_status_filter_is_refused(
    webhook_client: AsyncTestClient[Litestar],
) -> None:
    response = await webhook_client.get("/internal/v1/webhook-events?status=lost")

    assert response.status_code == 400


async def test_replay_applies_a_stored_event_again(
    webhook_client: AsyncTestClient[Litestar], db: Database
) -> None:
    event = stripe_events.event("invoice.paid", stripe_events.invoice("paid"))
    await post_event(webhook_client, event)
    first = await wait_until(lambda: get_event(db, event["id"]), status="processed")

    response = await webhook_client.post(f"/internal/v1/webhook-events/{event['id']}/replay")

    assert response.status_code == 202
    assert response.json()["status"] == "pending"
    again = await wait_until(lambda: get_event(db, event["id"]), status="processed")
    assert again.processed_at > first.processed_at


async def test_replaying_an_unknown_event_is_a_404(
    webhook_client: AsyncTestClient[Litestar],
) -> None:
    response = await webhook_client.post("/internal/v1/webhook-events/evt_unknown/replay")

    assert response.status_code == 404


async def test_the_journal_routes_need_the_internal_credential(
    webhook_client: AsyncTestClient[Litestar],
) -> None:
    response = await webhook_client.get(
        "/internal/v1/webhook-events", headers={"X-Internal-Token": "wrong"}
    )

    assert response.status_code == 401


async def test_metrics_count_processed_events_and_expose_the_oldest_pending_age(
    webhook_client: AsyncTestClient[Litestar], db: Database
) -> None:
    event = stripe_events.event("invoice.finalized", stripe_events.invoice("open"))
    await post_event(webhook_client, event)
    await wait_until(lambda: get_event(db, event["id"]), status="processed")

    metrics = (await webhook_client.get("/metrics")).text

    assert (
        'facturation_webhook_events_processed_total{outcome="processed",type="invoice.finalized"}'
        in metrics
    )
    assert "facturation_webhook_oldest_pending_event_age_seconds " in metrics


def test_several_apps_build_in_one_process_without_registering_metrics_twice(
    facturation_url: str,
) -> None:
    create_app(webhook_settings(facturation_url))
    create_app(webhook_settings(facturation_url))


async def test_replaying_an_event_a_worker_holds_is_a_409(
    facturation_url: str, db: Database
) -> None:
    event = stripe_events.event("invoice.paid", stripe_events.invoice("paid"))
    await journal_event(db, event)
    async with db.sessionmaker() as session:
        (held,) = await journal.claim_events(session, limit=1, lease=timedelta(seconds=60))

    async with webhook_app_client(facturation_url, facturation_webhook_worker=False) as private:
        response = await private.post(f"/internal/v1/webhook-events/{held.id}/replay")

    assert response.status_code == 409
    stored = await get_event(db, held.id)
    assert stored is not None
    assert (stored.status, stored.claim_token) == ("processing", held.claim_token)


async def test_without_a_signing_secret_events_are_refused_with_503_and_not_stored(
    facturation_url: str, db: Database
) -> None:
    event = stripe_events.event("invoice.paid", stripe_events.invoice("paid"))

    async with webhook_app_client(facturation_url, stripe_webhook_secret=[]) as test_client:
        response = await post_event(test_client, event)

    assert response.status_code == 503
    assert await count_events(db) == 0
