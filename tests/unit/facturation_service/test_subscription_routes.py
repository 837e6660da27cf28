"""A subscription bought through the sandbox, end to end in-process: paying it (its events
applied through the journal) makes it active with its plan's entitlement; the owner lists,
cancels and resumes it, and opens the Customer Portal; anyone else gets 404; an ended one 409;
``BILLING_MODE=read_only`` refuses the writes with 503."""

from __future__ import annotations

import copy
import time
from typing import Any

import httpx
import msgspec
from sqlalchemy import select, update

from facturation_service.app import create_app
from facturation_service.billing_mode import BillingMode
from facturation_service.checkout import SUBSCRIPTION_CHECKOUT_SECONDS
from facturation_service.models import Entitlement, Order, Subscription, SubscriptionSlot
from facturation_service.reconciliation import Reconciler
from facturation_service.settings import FacturationSettings
from facturation_service.stripe_api import StripeApi
from facturation_service.worker import HANDLED_EVENT_TYPES
from shared import PROBLEM_MEDIA_TYPE, Database
from tests.support import stripe_events
from tests.support.sandbox import InProcessSandbox
from tests.unit.facturation_service.conftest import RETURN_ORIGIN, FakeAuth, as_user, running
from tests.unit.facturation_service.orders_support import apply

RETURN_URL = f"{RETURN_ORIGIN}/checkout/return?session_id={{CHECKOUT_SESSION_ID}}"
PLAN = [{"product_id": "plus-monthly", "quantity": 1}]


async def deliver_new_events(sandbox: InProcessSandbox, db: Database, seen: set[str]) -> None:
    """What the sandbox's webhooks would deliver, in its order, through the journal."""
    fresh = [
        event
        for event_id, event in list(sandbox.state.events.items())
        if event_id not in seen and event["type"] in HANDLED_EVENT_TYPES
    ]
    seen.update(sandbox.state.events)
    await apply(db, *fresh)


async def subscribe(
    client: httpx.AsyncClient, sandbox: InProcessSandbox, db: Database, user_id: str
) -> tuple[str, set[str]]:
    """Check the plan out, pay it, apply its events; the subscription id."""
    opened = await client.post(
        "/billing/checkout-sessions",
        json={"items": PLAN, "return_url": RETURN_URL},
        headers=as_user(user_id),
    )
    assert opened.status_code == 201, opened.text
    paid = await sandbox.pay(opened.json()["id"])
    seen: set[str] = set()
    await deliver_new_events(sandbox, db, seen)
    subscription_id = paid.get("subscription") or sandbox.state.checkout_sessions[
        opened.json()["id"]
    ].get("subscription")
    assert isinstance(subscription_id, str)
    return subscription_id, seen


async def listed(client: httpx.AsyncClient, user_id: str) -> list[dict[str, Any]]:
    response = await client.get("/billing/subscriptions", headers=as_user(user_id))
    assert response.status_code == 200
    data: list[dict[str, Any]] = response.json()["data"]
    return data


async def plan_entitlements(db: Database, user_id: str) -> list[tuple[str, str, str]]:
    async with db.sessionmaker() as session:
        rows = await session.scalars(select(Entitlement).where(Entitlement.user_id == user_id))
        return [(row.source, row.product_id, row.status) for row in rows]


async def test_a_paid_subscription_checkout_is_listed_active_and_grants_the_plan_once(
    client: httpx.AsyncClient, fake_auth: FakeAuth, sandbox: InProcessSandbox, db: Database
) -> None:
    user_id = fake_auth.add_user()

    subscription_id, _ = await subscribe(client, sandbox, db, user_id)

    [found] = await listed(client, user_id)
    period_end = sandbox.state.subscriptions[subscription_id]["items"]["data"][0][
        "current_period_end"
    ]
    assert found == {
        "id": subscription_id,
        "product_id": "plus-monthly",
        "status": "active",
        "current_period_end": period_end,
        "cancel_at_period_end": False,
        "canceled_at": None,
    }
    assert await plan_entitlements(db, user_id) == [("subscription", "plus-monthly", "active")]
    async with db.sessionmaker() as session:
        [order] = (await session.scalars(select(Order))).all()
        slot = await session.get(SubscriptionSlot, user_id)
    assert order.status == "paid"
    assert slot is not None
    assert slot.subscription_id == subscription_id
    second = await client.post(
        "/billing/checkout-sessions",
        json={"items": PLAN, "return_url": RETURN_URL},
        headers=as_user(user_id),
    )
    assert second.status_code == 409


async def test_cancel_at_period_end_then_resume_answer_the_subscription_as_stripe_has_it(
    client: httpx.AsyncClient, fake_auth: FakeAuth, sandbox: InProcessSandbox, db: Database
) -> None:
    user_id = fake_auth.add_user()
    subscription_id, seen = await subscribe(client, sandbox, db, user_id)

    canceled = await client.post(
        f"/billing/subscriptions/{subscription_id}/cancel", headers=as_user(user_id)
    )

    assert canceled.status_code == 200, canceled.text
    assert canceled.json()["cancel_at_period_end"] is True
    assert canceled.json()["status"] == "active"
    assert sandbox.state.subscriptions[subscription_id]["cancel_at_period_end"] is True
    assert (await listed(client, user_id))[0]["cancel_at_period_end"] is True

    resumed = await client.post(
        f"/billing/subscriptions/{subscription_id}/resume", headers=as_user(user_id)
    )

    assert resumed.status_code == 200
    assert resumed.json()["cancel_at_period_end"] is False
    await deliver_new_events(sandbox, db, seen)
    assert (await listed(client, user_id))[0]["cancel_at_period_end"] is False


async def test_cancel_now_ends_it_frees_the_slot_and_expires_the_plan_and_then_409(
    client: httpx.AsyncClient, fake_auth: FakeAuth, sandbox: InProcessSandbox, db: Database
) -> None:
    user_id = fake_auth.add_user()
    subscription_id, seen = await subscribe(client, sandbox, db, user_id)

    ended = await client.post(
        f"/billing/subscriptions/{subscription_id}/cancel",
        json={"at_period_end": False},
        headers=as_user(user_id),
    )
    await deliver_new_events(sandbox, db, seen)

    assert ended.status_code == 200, ended.text
    assert ended.json()["status"] == "canceled"
    assert ended.json()["canceled_at"] is not None
    assert [
        r.method for r in sandbox.requests.matching(path=f"/v1/subscriptions/{subscription_id}")
    ] == ["DELETE"]
    assert await plan_entitlements(db, user_id) == [("subscription", "plus-monthly", "expired")]
    async with db.sessionmaker() as session:
        assert await session.get(SubscriptionSlot, user_id) is None
    again = await client.post(
        f"/billing/subscriptions/{subscription_id}/resume", headers=as_user(user_id)
    )
    assert again.status_code == 409
    assert again.headers["content-type"].startswith(PROBLEM_MEDIA_TYPE)
    reopened = await client.post(
        "/billing/checkout-sessions",
        json={"items": PLAN, "return_url": RETURN_URL},
        headers=as_user(user_id),
    )
    assert reopened.status_code == 201


async def test_someone_elses_subscription_is_404_and_stripe_is_not_called(
    client: httpx.AsyncClient, fake_auth: FakeAuth, sandbox: InProcessSandbox, db: Database
) -> None:
    owner, intruder = fake_auth.add_user(), fake_auth.add_user()
    subscription_id, _ = await subscribe(client, sandbox, db, owner)
    before = len(sandbox.requests.matching(path=f"/v1/subscriptions/{subscription_id}"))

    for action in ("cancel", "resume"):
        response = await client.post(
            f"/billing/subscriptions/{subscription_id}/{action}", headers=as_user(intruder)
        )
        assert response.status_code == 404
    assert await listed(client, intruder) == []
    assert len(sandbox.requests.matching(path=f"/v1/subscriptions/{subscription_id}")) == before


async def test_a_portal_session_is_made_for_the_users_customer_with_an_allowed_return_url(
    client: httpx.AsyncClient, fake_auth: FakeAuth, sandbox: InProcessSandbox
) -> None:
    user_id = fake_auth.add_user()
    assert (await client.post("/billing/customer", headers=as_user(user_id))).status_code == 201

    made = await client.post(
        "/billing/portal-sessions",
        json={"return_url": f"{RETURN_ORIGIN}/account"},
        headers=as_user(user_id),
    )
    refused = await client.post(
        "/billing/portal-sessions",
        json={"return_url": "https://evil.example/account"},
        headers=as_user(user_id),
    )

    assert made.status_code == 201, made.text
    assert "/sandbox/portal/bps_" in made.json()["url"]
    [request] = sandbox.posts("/v1/billing_portal/sessions")
    assert request.params["customer"] == fake_auth.users[user_id].user_stripe_id
    assert request.params["return_url"] == f"{RETURN_ORIGIN}/account"
    assert request.idempotency_key
    assert refused.status_code == 422


async def test_a_portal_session_for_a_user_without_a_stripe_customer_is_409(
    client: httpx.AsyncClient, fake_auth: FakeAuth, sandbox: InProcessSandbox
) -> None:
    response = await client.post("/billing/portal-sessions", headers=as_user(fake_auth.add_user()))

    assert response.status_code == 409
    assert sandbox.posts("/v1/billing_portal/sessions") == []


async def test_read_only_refuses_cancel_resume_and_portal_with_503_but_lists(
    settings: FacturationSettings, fake_auth: FakeAuth, stripe_api: StripeApi
) -> None:
    read_only = msgspec.structs.replace(settings, billing_mode=BillingMode.READ_ONLY)
    user_id = fake_auth.add_user()
    async with running(create_app(read_only, stripe=stripe_api, auth=fake_auth)) as http:
        writes = [
            await http.post("/billing/subscriptions/sub_1/cancel", headers=as_user(user_id)),
            await http.post("/billing/subscriptions/sub_1/resume", headers=as_user(user_id)),
            await http.post("/billing/portal-sessions", headers=as_user(user_id)),
        ]
        listing = await http.get("/billing/subscriptions", headers=as_user(user_id))

    assert [r.status_code for r in writes] == [503, 503, 503]
    assert all(r.headers["retry-after"] for r in writes)
    assert listing.status_code == 200


async def test_stripes_answer_to_a_cancel_never_replaces_a_newer_event_snapshot(
    client: httpx.AsyncClient, fake_auth: FakeAuth, sandbox: InProcessSandbox, db: Database
) -> None:
    user_id = fake_auth.add_user()
    subscription_id, _ = await subscribe(client, sandbox, db, user_id)
    newer = copy.deepcopy(sandbox.state.subscriptions[subscription_id])
    newer["status"] = "past_due"
    await apply(
        db,
        stripe_events.event(
            "customer.subscription.updated", newer, created=int(time.time()) + 3600
        ),
    )

    canceled = await client.post(
        f"/billing/subscriptions/{subscription_id}/cancel", headers=as_user(user_id)
    )

    assert canceled.status_code == 200
    assert canceled.json()["cancel_at_period_end"] is True  # what Stripe answered
    [stored] = await listed(client, user_id)
    assert (stored["status"], stored["cancel_at_period_end"]) == ("past_due", False)


async def test_reconciliation_applies_stripes_snapshot_to_a_subscription_whose_end_never_came(
    client: httpx.AsyncClient,
    fake_auth: FakeAuth,
    sandbox: InProcessSandbox,
    stripe_api: StripeApi,
    db: Database,
) -> None:
    user_id = fake_auth.add_user()
    subscription_id, _ = await subscribe(client, sandbox, db, user_id)
    await stripe_api.cancel_subscription(subscription_id)  # its events are never delivered
    async with db.engine.begin() as connection:  # and its period is long over, locally
        await connection.execute(
            update(Subscription)
            .where(Subscription.id == subscription_id)
            .values(current_period_end=int(time.time()) - 86_400)
        )

    report = await Reconciler(db, stripe_api, min_age_seconds=0).run()

    [item] = [item for item in report.items if item.subscription_id == subscription_id]
    assert (item.local_status, item.stripe_status, item.action, item.status) == (
        "active",
        "canceled",
        "applied",
        "canceled",
    )
    assert await plan_entitlements(db, user_id) == [("subscription", "plus-monthly", "expired")]
    async with db.sessionmaker() as session:
        assert await session.get(SubscriptionSlot, user_id) is None
    again = await Reconciler(db, stripe_api, min_age_seconds=0).run()
    assert [item for item in again.items if item.subscription_id] == []


async def _advance_to_period_end(sandbox: InProcessSandbox, subscription_id: str) -> None:
    period_end = sandbox.state.subscriptions[subscription_id]["items"]["data"][0][
        "current_period_end"
    ]
    now = (await sandbox.control("GET", "/sandbox/clock")).json()["now"]
    advanced = await sandbox.control(
        "POST", "/sandbox/clock/advance", json={"seconds": period_end - now + 1}
    )
    assert advanced.status_code == 200, advanced.text


async def plan_ends_at(db: Database, subscription_id: str) -> tuple[str, int]:
    async with db.sessionmaker() as session:
        row = await session.scalar(
            select(Entitlement).where(Entitlement.source_id == subscription_id)
        )
    assert row is not None
    assert row.ends_at is not None
    return row.status, int(row.ends_at.timestamp())


async def test_renewals_with_the_sandbox_clock_extend_suspend_and_finally_expire_the_plan(
    client: httpx.AsyncClient, fake_auth: FakeAuth, sandbox: InProcessSandbox, db: Database
) -> None:
    user_id = fake_auth.add_user()
    subscription_id, seen = await subscribe(client, sandbox, db, user_id)
    items = sandbox.state.subscriptions[subscription_id]["items"]["data"]

    await _advance_to_period_end(sandbox, subscription_id)  # renewed with the good card
    await deliver_new_events(sandbox, db, seen)
    assert await plan_ends_at(db, subscription_id) == ("active", items[0]["current_period_end"])

    customer = sandbox.state.subscriptions[subscription_id]["customer"]
    failing = await sandbox.control(
        "POST", f"/sandbox/customers/{customer}/card", json={"card_number": "4000000000000341"}
    )
    assert failing.status_code == 200, failing.text
    paid_until = items[0]["current_period_end"]
    await _advance_to_period_end(sandbox, subscription_id)  # the renewal fails: past_due
    await deliver_new_events(sandbox, db, seen)
    assert (await listed(client, user_id))[0]["status"] == "past_due"
    assert await plan_ends_at(db, subscription_id) == (
        "suspended",
        sandbox.state.subscriptions[subscription_id]["items"]["data"][0]["current_period_end"],
    )
    assert (
        paid_until
        < sandbox.state.subscriptions[subscription_id]["items"]["data"][0]["current_period_end"]
    )

    canceled = await client.post(
        f"/billing/subscriptions/{subscription_id}/cancel", headers=as_user(user_id)
    )
    assert canceled.status_code == 200
    await _advance_to_period_end(sandbox, subscription_id)  # ends at the period's end
    await deliver_new_events(sandbox, db, seen)

    assert (await listed(client, user_id))[0]["status"] == "canceled"
    assert (await plan_ends_at(db, subscription_id))[0] == "expired"
    async with db.sessionmaker() as session:
        assert await session.get(SubscriptionSlot, user_id) is None


async def test_an_expired_subscription_checkout_frees_the_slot_through_its_event(
    client: httpx.AsyncClient, fake_auth: FakeAuth, sandbox: InProcessSandbox, db: Database
) -> None:
    user_id = fake_auth.add_user()
    opened = await client.post(
        "/billing/checkout-sessions",
        json={"items": PLAN, "return_url": RETURN_URL},
        headers=as_user(user_id),
    )
    assert opened.status_code == 201
    advanced = await sandbox.control(
        "POST", "/sandbox/clock/advance", json={"seconds": SUBSCRIPTION_CHECKOUT_SECONDS + 1}
    )
    assert advanced.json()["expired_sessions"] == [opened.json()["id"]]

    await deliver_new_events(sandbox, db, set())

    async with db.sessionmaker() as session:
        assert await session.get(SubscriptionSlot, user_id) is None
        order = await session.scalar(select(Order))
    assert order is not None
    assert order.status == "expired"
    # Stripe's clock (the sandbox's, moved on) is now ahead of facturation's: Stripe refuses
    # our expires_at, and the session is made with Stripe's default expiry instead.
    again = await client.post(
        "/billing/checkout-sessions",
        json={"items": PLAN, "return_url": RETURN_URL},
        headers=as_user(user_id),
    )
    assert again.status_code == 201, again.text
    assert "expires_at" not in sandbox.posts("/v1/checkout/sessions")[-1].params
