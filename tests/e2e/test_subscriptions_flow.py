"""Subscriptions end to end (flow 8), through the real gateway, auth, facturation and the Stripe
sandbox as processes, the sandbox delivering its signed webhooks to the gateway: subscribe with
4242 -> active and entitled -> the sandbox clock crosses a period end -> renewal invoice paid and
period extended -> a failing renewal card, another period -> past_due and suspended -> cancel now
-> canceled and expired. A second subscription checkout while one is open or live is a 409."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import datetime
from typing import Any

import httpx
import pytest
import pytest_asyncio

from stripe_sandbox import FAILS_LATER_CARD, SUCCEEDING_CARD
from tests.e2e.conftest import User, new_user
from tests.support.offline_stack import OfflineStack, start_offline_stack
from tests.support.polling import eventually

pytestmark = pytest.mark.asyncio(loop_scope="module")

MONTHLY = "plus-monthly"
YEARLY = "plus-yearly"


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def offline(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[OfflineStack]:
    async with start_offline_stack(tmp_path_factory.mktemp("subscriptions")) as running:
        yield running


@pytest_asyncio.fixture(loop_scope="module")
async def http(offline: OfflineStack) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=offline.url, timeout=15) as client:
        yield client


@pytest_asyncio.fixture(loop_scope="module")
async def sandbox(offline: OfflineStack) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=offline.sandbox.url, timeout=15) as client:
        yield client


async def checkout(http: httpx.AsyncClient, buyer: User, plan: str) -> httpx.Response:
    return await http.post(
        "/api/v1/billing/checkout-sessions",
        json={"items": [{"product_id": plan, "quantity": 1}]},
        headers=buyer.bearer,
    )


async def subscribe(http: httpx.AsyncClient, sandbox: httpx.AsyncClient, buyer: User) -> Any:
    """The monthly plan, paid with 4242 as the embedded form pays; its listed subscription once
    the sandbox's events have made it active."""
    created = await checkout(http, buyer, MONTHLY)
    assert created.status_code == 201, created.text
    paid = await sandbox.post(
        f"/sandbox/checkout/sessions/{created.json()['id']}/complete",
        json={"client_secret": created.json()["client_secret"], "card_number": SUCCEEDING_CARD},
    )
    assert paid.status_code == 200, paid.text
    return await eventually(lambda: subscription_where(http, buyer, status="active"))


async def subscriptions(http: httpx.AsyncClient, buyer: User) -> list[Any]:
    page = await http.get("/api/v1/billing/subscriptions", headers=buyer.bearer)
    assert page.status_code == 200, page.text
    data: list[Any] = page.json()["data"]
    return data


async def subscription_where(http: httpx.AsyncClient, buyer: User, **fields: Any) -> Any:
    """The user's only subscription when it has every one of ``fields``, else None."""
    listed = await subscriptions(http, buyer)
    assert len(listed) <= 1, listed
    if listed and all(listed[0][key] == value for key, value in fields.items()):
        return listed[0]
    return None


async def renewed_after(http: httpx.AsyncClient, buyer: User, old_end: int) -> Any:
    """The subscription once active in a period that ends after ``old_end``, else None."""
    found = await subscription_where(http, buyer, status="active")
    return found if found and found["current_period_end"] > old_end else None


async def plan_entitlement(http: httpx.AsyncClient, buyer: User, status: str) -> Any:
    """The plan's entitlement (every status listed) when it is ``status``, else None."""
    page = await http.get(
        "/api/v1/billing/entitlements", params={"status": "all"}, headers=buyer.bearer
    )
    assert page.status_code == 200, page.text
    found = [e for e in page.json()["data"] if e["product_id"] == MONTHLY]
    assert len(found) <= 1, found
    return found[0] if found and found[0]["status"] == status else None


async def invoices(http: httpx.AsyncClient, buyer: User) -> list[Any]:
    page = await http.get("/api/v1/billing/invoices", headers=buyer.bearer)
    assert page.status_code == 200, page.text
    data: list[Any] = page.json()["data"]
    return data


async def advance_past(sandbox: httpx.AsyncClient, period_end: int) -> Any:
    """Move the sandbox's clock a minute past ``period_end``; its answer."""
    now = (await sandbox.get("/sandbox/clock")).json()["now"]
    advanced = await sandbox.post("/sandbox/clock/advance", json={"seconds": period_end - now + 60})
    assert advanced.status_code == 200, advanced.text
    return advanced.json()


def when(iso: str) -> datetime:
    return datetime.fromisoformat(iso)


async def test_a_second_subscription_checkout_while_one_is_open_or_live_is_a_conflict(
    http: httpx.AsyncClient, sandbox: httpx.AsyncClient
) -> None:
    buyer = await new_user(http)
    first = await checkout(http, buyer, MONTHLY)
    assert first.status_code == 201, first.text

    while_open = await checkout(http, buyer, YEARLY)

    assert while_open.status_code == 409, while_open.text
    assert while_open.headers["content-type"].startswith("application/problem+json")
    paid = await sandbox.post(
        f"/sandbox/checkout/sessions/{first.json()['id']}/complete",
        json={"client_secret": first.json()["client_secret"], "card_number": SUCCEEDING_CARD},
    )
    assert paid.status_code == 200, paid.text
    live = await eventually(lambda: subscription_where(http, buyer, status="active"))
    assert live is not None

    while_live = await checkout(http, buyer, YEARLY)

    assert while_live.status_code == 409, while_live.text
    assert while_live.json()["status"] == 409
    assert [s["id"] for s in await subscriptions(http, buyer)] == [live["id"]]


async def test_subscribe_renew_fail_a_renewal_then_cancel_now_moves_plan_and_entitlement(
    offline: OfflineStack, http: httpx.AsyncClient, sandbox: httpx.AsyncClient
) -> None:
    buyer = await new_user(http)

    # Subscribe: active, the plan granted until the period's end, the first invoice paid.
    started = await subscribe(http, sandbox, buyer)
    assert started is not None, await subscriptions(http, buyer)
    sub_id, first_end = started["id"], started["current_period_end"]
    assert sub_id.startswith("sub_")
    assert (started["product_id"], started["cancel_at_period_end"]) == (MONTHLY, False)
    granted = await eventually(lambda: plan_entitlement(http, buyer, "active"))
    assert granted is not None
    assert (granted["source"], granted["source_id"]) == ("subscription", sub_id)
    assert when(granted["ends_at"]).timestamp() == first_end
    (first_invoice,) = await eventually(lambda: invoices(http, buyer))
    assert first_invoice["status"] == "paid"

    # One period later: the renewal invoice is paid and the period extended.
    renewal = await advance_past(sandbox, first_end)
    # (Other tests' subscriptions in this sandbox renew too.)
    assert sub_id in renewal["renewed"]
    assert sub_id not in renewal["failed"]
    renewed = await eventually(lambda: renewed_after(http, buyer, first_end))
    assert renewed is not None, await subscriptions(http, buyer)
    second_end = renewed["current_period_end"]
    assert second_end > first_end

    async def two_paid_invoices() -> list[Any] | None:
        listed = await invoices(http, buyer)
        return listed if [i["status"] for i in listed] == ["paid", "paid"] else None

    paid_invoices = await eventually(two_paid_invoices)
    assert paid_invoices is not None, await invoices(http, buyer)
    renewal_invoice = paid_invoices[0]
    assert renewal_invoice["id"] != first_invoice["id"]
    assert renewal_invoice["amount_paid"] == first_invoice["amount_paid"] > 0
    detail = await http.get(
        f"/api/v1/billing/invoices/{renewal_invoice['id']}", headers=buyer.bearer
    )
    assert [(line["period_start"], line["period_end"]) for line in detail.json()["lines"]] == [
        (first_end, second_end)
    ]

    async def extended() -> Any:
        found = await plan_entitlement(http, buyer, "active")
        return found if found and when(found["ends_at"]).timestamp() == second_end else None

    assert await eventually(extended)

    # A renewal card that fails, one more period: past_due, the plan suspended.
    me = await http.get("/api/v1/users/me", headers=buyer.bearer)
    customer = me.json()["user_stripe_id"]
    card = await sandbox.post(
        f"/sandbox/customers/{customer}/card", json={"card_number": FAILS_LATER_CARD}
    )
    assert card.status_code == 200, card.text
    failing = await advance_past(sandbox, second_end)
    assert sub_id in failing["failed"]
    assert sub_id not in failing["renewed"]
    past_due = await eventually(lambda: subscription_where(http, buyer, status="past_due"))
    assert past_due is not None, await subscriptions(http, buyer)
    assert past_due["current_period_end"] > second_end
    assert await eventually(lambda: plan_entitlement(http, buyer, "suspended"))

    async def one_open_invoice() -> list[Any] | None:
        listed = await invoices(http, buyer)
        return listed if [i["status"] for i in listed] == ["open", "paid", "paid"] else None

    unpaid = await eventually(one_open_invoice)
    assert unpaid is not None, await invoices(http, buyer)
    assert unpaid[0]["amount_paid"] == 0

    # Cancel now: canceled at once, the plan expired, nothing left in use.
    canceled = await http.post(
        f"/api/v1/billing/subscriptions/{sub_id}/cancel",
        json={"at_period_end": False},
        headers=buyer.bearer,
    )
    assert canceled.status_code == 200, canceled.text
    assert (canceled.json()["id"], canceled.json()["status"]) == (sub_id, "canceled")
    assert canceled.json()["canceled_at"] is not None
    assert await eventually(lambda: subscription_where(http, buyer, status="canceled"))
    assert await eventually(lambda: plan_entitlement(http, buyer, "expired"))
    in_use = await http.get("/api/v1/billing/entitlements", headers=buyer.bearer)
    assert in_use.json()["data"] == []
    again = await http.post(
        f"/api/v1/billing/subscriptions/{sub_id}/cancel",
        json={"at_period_end": False},
        headers=buyer.bearer,
    )
    assert again.status_code == 409, again.text
    # The slot is free again: a new plan may be bought.
    assert (await checkout(http, buyer, YEARLY)).status_code == 201
