"""Catch-up from Stripe's event list (flow 9) against the sandbox: missed events are journaled
once, whatever the webhooks do before or after, and a failing Stripe loses nothing."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator
from functools import partial
from typing import Any

import httpx
import pytest
from prometheus_client import REGISTRY
from sqlalchemy import select, update

from facturation_service.app import create_app
from facturation_service.catchup import CatchUp, CatchUpResult, type_groups
from facturation_service.leases import ensure_job_row
from facturation_service.models import ScheduledJob
from facturation_service.stripe_api import StripeApi
from facturation_service.worker import HANDLED_EVENT_TYPES, WebhookWorker, WorkerConfig
from shared import INTERNAL_TOKEN_HEADER, ConflictError, Database, ProblemError
from tests.support import stripe_events
from tests.support.webhook_app import (
    count_events,
    get_event,
    get_invoice,
    wait_until,
    webhook_settings,
)
from tests.unit.facturation_service.conftest import FakeAuth, running
from tests.unit.facturation_service.sandbox import Sandbox, running_sandbox

FAST = WorkerConfig(poll_interval=0.02, retry_base=0.0, max_attempts=3, lease=30.0)
GROUPS = type_groups(HANDLED_EVENT_TYPES)
GROUP = next(group for group in GROUPS if "invoice.paid" in group.types)
"""The group whose cursor the invoice.paid events below move."""


@pytest.fixture
async def sandbox() -> AsyncIterator[Sandbox]:
    async with running_sandbox() as running:
        yield running


@pytest.fixture
async def stripe_api(sandbox: Sandbox) -> AsyncIterator[StripeApi]:
    api = sandbox.stripe_api()
    yield api
    await api.close()


def paid_invoice_events(sandbox: Sandbox, count: int) -> list[dict[str, Any]]:
    return [
        sandbox.plant(stripe_events.event("invoice.paid", stripe_events.invoice("paid")))
        for _ in range(count)
    ]


async def deliver(client: httpx.AsyncClient, event: dict[str, Any]) -> httpx.Response:
    body, headers = stripe_events.signed_request(event, stripe_events.WEBHOOK_SECRET)
    return await client.post("/webhooks/stripe", content=body, headers=headers)


def sample(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


async def job_row(db: Database) -> ScheduledJob:
    async with db.sessionmaker() as session:
        row = await session.scalar(select(ScheduledJob).where(ScheduledJob.name == GROUP.name))
    assert row is not None
    return row


async def test_missed_events_are_journaled_once_and_applied_by_the_worker(
    db: Database, sandbox: Sandbox, stripe_api: StripeApi
) -> None:
    events = paid_invoice_events(sandbox, 3)
    sandbox.plant(stripe_events.customer_event())  # not a type facturation handles
    catch_up = CatchUp(db, stripe_api, handled_types=HANDLED_EVENT_TYPES, page_size=2)
    recovered_before = sample("facturation_catchup_events_recovered_total")

    first = await catch_up.run_pass()
    again = await catch_up.run_pass()
    await WebhookWorker(db, FAST).drain()

    assert (first.fetched, first.recorded) == (3, 3)
    assert (again.fetched, again.recorded) == (3, 0)
    assert await count_events(db) == 3
    for event in events:
        invoice = await get_invoice(db, event["data"]["object"]["id"])
        assert invoice is not None
        assert invoice.status == "paid"
    assert sample("facturation_catchup_events_recovered_total") - recovered_before == 3
    assert sample("facturation_catchup_last_success_timestamp_seconds") >= time.time() - 60
    row = await job_row(db)
    assert (row.resume_after, row.resume_upper) == (None, None)
    assert row.cursor is not None
    assert row.cursor >= max(event["created"] for event in events)


async def test_the_journal_keeps_one_copy_whether_the_webhook_comes_before_or_after(
    facturation_url: str, db: Database, sandbox: Sandbox, stripe_api: StripeApi
) -> None:
    early, late = paid_invoice_events(sandbox, 2)
    settings = webhook_settings(facturation_url, facturation_catchup_seconds=0)
    async with running(create_app(settings, stripe=stripe_api, auth=FakeAuth())) as client:
        delivered_first = await deliver(client, early)
        caught_up = await client.post("/internal/v1/catch-up")
        delivered_late = await deliver(client, late)
        for event_id in (early["id"], late["id"]):
            await wait_until(partial(get_event, db, event_id), status="processed")

    assert delivered_first.json()["duplicate"] is False
    assert caught_up.status_code == 200, caught_up.text
    assert caught_up.json() == {"fetched": 2, "recorded": 1}
    assert delivered_late.status_code == 200
    assert delivered_late.json()["duplicate"] is True
    assert await count_events(db) == 2


class StripeThatFailsAfter:
    """Lets ``pages`` event-list requests through, then Stripe starts failing (500s)."""

    def __init__(self, sandbox: Sandbox, stripe_api: StripeApi, pages: int) -> None:
        self.sandbox = sandbox
        self.stripe_api = stripe_api
        self.pages = pages

    async def list_events(self, **params: Any) -> Any:
        if self.pages == 0:
            self.sandbox.fail("GET", "/v1/events")
        self.pages -= 1
        return await self.stripe_api.list_events(**params)


async def test_stripe_failing_mid_pass_keeps_the_cursor_and_the_next_pass_resumes(
    db: Database, sandbox: Sandbox, stripe_api: StripeApi
) -> None:
    events = paid_invoice_events(sandbox, 5)
    failing = StripeThatFailsAfter(sandbox, stripe_api, pages=1)
    with pytest.raises(ProblemError) as stopped:
        await CatchUp(
            db,
            failing,  # type: ignore[arg-type]
            handled_types=HANDLED_EVENT_TYPES,
            page_size=2,
        ).run_pass()
    held = await job_row(db)
    journaled_after_failure = await count_events(db)

    sandbox.restore()
    resumed = await CatchUp(
        db, stripe_api, handled_types=HANDLED_EVENT_TYPES, page_size=2
    ).run_pass()

    assert stopped.value.status == 502
    assert journaled_after_failure == 2
    assert held.cursor is None
    assert held.resume_after == events[-2]["id"]  # newest first: the second newest was last
    assert (resumed.fetched, resumed.recorded) == (3, 3)
    assert await count_events(db) == 5
    after = await job_row(db)
    assert (after.resume_after, after.resume_upper) == (None, None)
    assert after.cursor is not None


async def test_the_catch_up_route_answers_stripes_failure_as_a_problem_and_records_nothing(
    facturation_url: str, db: Database, sandbox: Sandbox, stripe_api: StripeApi
) -> None:
    paid_invoice_events(sandbox, 2)
    sandbox.fail("GET", "/v1/events")
    settings = webhook_settings(facturation_url, facturation_catchup_seconds=0)
    async with running(create_app(settings, stripe=stripe_api, auth=FakeAuth())) as client:
        response = await client.post("/internal/v1/catch-up")
        anonymous = await client.post(
            "/internal/v1/catch-up", headers={INTERNAL_TOKEN_HEADER: "wrong"}
        )

    assert response.status_code == 502
    assert response.headers["content-type"].startswith("application/problem+json")
    assert anonymous.status_code == 401
    assert await count_events(db) == 0


async def test_stripe_rate_limiting_the_event_list_answers_503_with_retry_after_then_resumes(
    facturation_url: str, db: Database, sandbox: Sandbox, stripe_api: StripeApi
) -> None:
    paid_invoice_events(sandbox, 3)
    sandbox.faults.add("GET", "/v1/events", "rate_limit")
    settings = webhook_settings(
        facturation_url, facturation_catchup_seconds=0, facturation_webhook_worker=False
    )
    async with running(create_app(settings, stripe=stripe_api, auth=FakeAuth())) as client:
        limited = await client.post("/internal/v1/catch-up")
        journaled_while_limited = await count_events(db)
        retried = await client.post("/internal/v1/catch-up")

    assert limited.status_code == 503
    assert limited.headers["content-type"].startswith("application/problem+json")
    assert limited.headers["retry-after"] == "1"
    assert journaled_while_limited == 0
    assert retried.json() == {"fetched": 3, "recorded": 3}
    # The refused request, then one per type group.
    assert len(sandbox.requests.matching("GET", "/v1/events")) == 1 + len(GROUPS)


async def test_stripe_unreachable_is_a_502_and_the_next_pass_records_everything(
    db: Database, sandbox: Sandbox, stripe_api: StripeApi
) -> None:
    paid_invoice_events(sandbox, 4)
    sandbox.faults.add("GET", "/v1/events", "disconnect")
    catch_up = CatchUp(db, stripe_api, handled_types=HANDLED_EVENT_TYPES, page_size=2)

    with pytest.raises(ProblemError) as unreachable:
        await catch_up.run_pass()
    resumed = await catch_up.run_pass()

    assert unreachable.value.status == 502
    assert (resumed.fetched, resumed.recorded) == (4, 4)
    assert await count_events(db) == 4


async def test_a_malformed_listed_event_is_journaled_failed_and_never_blocks_the_rest(
    db: Database, sandbox: Sandbox, stripe_api: StripeApi
) -> None:
    good = paid_invoice_events(sandbox, 2)
    no_object = stripe_events.event("invoice.paid", stripe_events.invoice("paid"))
    no_object["data"] = {"object": "in_not_an_object"}
    odd_livemode = stripe_events.event("invoice.paid", stripe_events.invoice("paid"))
    odd_livemode["livemode"] = "maybe"
    for event in (no_object, odd_livemode):
        sandbox.plant(event)

    result = await CatchUp(db, stripe_api, handled_types=HANDLED_EVENT_TYPES).run_pass()
    await WebhookWorker(db, FAST).drain()

    assert (result.fetched, result.recorded) == (4, 4)
    for bad, reason in ((no_object, "data.object"), (odd_livemode, "livemode")):
        stored = await get_event(db, bad["id"])
        assert stored is not None
        assert stored.status == "failed"
        assert stored.last_error is not None
        assert reason in stored.last_error
    for event in good:
        stored = await get_event(db, event["id"])
        assert stored is not None
        assert stored.status == "processed"


async def test_two_passes_at_once_record_each_event_once(
    db: Database, sandbox: Sandbox, stripe_api: StripeApi
) -> None:
    paid_invoice_events(sandbox, 12)
    other = sandbox.stripe_api()
    try:
        passes = [
            CatchUp(db, api, handled_types=HANDLED_EVENT_TYPES, page_size=3)
            for api in (stripe_api, other)
        ]
        # Without the lease both list everything; the journal's unique id decides.
        unlocked = await asyncio.gather(*(each.run_pass_unlocked() for each in passes))
        for event in paid_invoice_events(sandbox, 4):
            assert event["id"]
        locked = await asyncio.gather(*(each.run_pass() for each in passes), return_exceptions=True)
    finally:
        await other.close()

    assert sum(result.recorded for result in unlocked) == 12
    assert await count_events(db) == 16
    done = [result for result in locked if isinstance(result, CatchUpResult)]
    refused = [result for result in locked if isinstance(result, ConflictError)]
    assert len(done) + len(refused) == 2
    assert sum(result.recorded for result in done) == 4


async def test_a_cursor_close_to_stripes_30_day_horizon_is_logged_and_counted(
    db: Database,
    sandbox: Sandbox,
    stripe_api: StripeApi,
    caplog: pytest.LogCaptureFixture,
) -> None:
    await ensure_job_row(db.engine, GROUP.name)
    async with db.engine.begin() as connection:
        await connection.execute(
            update(ScheduledJob)
            .where(ScheduledJob.name == GROUP.name)
            .values(cursor=int(time.time()) - 28 * 86_400)
        )
    before = sample("facturation_catchup_errors_total", reason="cursor_near_horizon")

    with caplog.at_level(logging.ERROR, logger="facturation_service.catchup"):
        await CatchUp(db, stripe_api, handled_types=HANDLED_EVENT_TYPES).run_pass()

    assert sample("facturation_catchup_errors_total", reason="cursor_near_horizon") == before + 1
    assert any("30-day horizon" in record.getMessage() for record in caplog.records)


def test_the_handled_types_with_subscriptions_are_listed_in_two_requests_of_at_most_20() -> None:
    assert len(HANDLED_EVENT_TYPES) > 20
    assert [len(group.types) <= 20 for group in GROUPS] == [True, True]
    assert sorted(t for group in GROUPS for t in group.types) == sorted(HANDLED_EVENT_TYPES)
    assert "customer.subscription.deleted" in HANDLED_EVENT_TYPES


def test_handled_types_are_asked_for_in_groups_of_at_most_twenty_with_stable_names() -> None:
    types = [f"thing.t{index:02d}" for index in range(45)]

    groups = type_groups(types)

    assert [len(group.types) for group in groups] == [20, 20, 5]
    assert sorted(t for group in groups for t in group.types) == sorted(types)
    assert [group.name for group in type_groups(reversed(types))] == [g.name for g in groups]
    assert len({group.name for group in groups}) == 3
