"""``/billing/orders`` and ``/billing/entitlements``: the signed-in user's own, newest first,
paginated by cursor; someone else's order is a 404."""

from __future__ import annotations

from datetime import timedelta

import httpx

from facturation_service.fulfilment import fulfil
from facturation_service.models import Order, utcnow
from shared import PROBLEM_MEDIA_TYPE, Database
from tests.support import stripe_events
from tests.unit.facturation_service.conftest import as_user
from tests.unit.facturation_service.orders_support import (
    USER_ID,
    apply,
    paid_session_event,
    store_order,
)

OTHER_USER = "99999999-2222-4333-8444-555555555555"


async def test_orders_are_listed_newest_first_page_by_page(
    client: httpx.AsyncClient, db: Database
) -> None:
    start = utcnow() - timedelta(hours=1)
    placed = [
        await store_order(db, created_at=start + timedelta(minutes=minute)) for minute in range(5)
    ]
    await store_order(db, user_id=OTHER_USER)

    seen: list[str] = []
    cursor: str | None = None
    pages = 0
    while True:
        params = {"limit": "2", **({"cursor": cursor} if cursor else {})}
        page = await client.get("/billing/orders", params=params, headers=as_user(USER_ID))
        assert page.status_code == 200
        body = page.json()
        seen += [order["id"] for order in body["data"]]
        pages += 1
        cursor = body["next_cursor"]
        if not body["has_more"]:
            assert cursor is None
            break

    assert seen == list(reversed(placed))
    assert pages == 3


async def test_an_order_shows_its_status_amounts_lines_and_links(
    client: httpx.AsyncClient, db: Database
) -> None:
    order_id = await store_order(db, session_id="cs_test_view_0001")
    await apply(db, paid_session_event(order_id, "cs_test_view_0001", "pi_View0001"))
    await apply(
        db,
        stripe_events.event(
            "refund.created", stripe_events.refund(payment_intent="pi_View0001", amount=700)
        ),
    )

    response = await client.get(f"/billing/orders/{order_id}", headers=as_user(USER_ID))

    assert response.status_code == 200
    body = response.json()
    assert {key: body[key] for key in ("status", "amount_total", "amount_refunded")} == {
        "status": "partially_refunded",
        "amount_total": 2000,
        "amount_refunded": 700,
    }
    assert body["checkout_session_id"] == "cs_test_view_0001"
    assert [line["product_id"] for line in body["lines"]] == ["pro-month", "sticker-pack"]
    assert body["created_at"].endswith(("Z", "+00:00"))


async def test_someone_elses_order_is_not_found(client: httpx.AsyncClient, db: Database) -> None:
    order_id = await store_order(db, user_id=OTHER_USER)

    response = await client.get(f"/billing/orders/{order_id}", headers=as_user(USER_ID))

    assert response.status_code == 404
    assert response.headers["content-type"] == PROBLEM_MEDIA_TYPE


async def test_a_cursor_this_api_did_not_return_is_a_bad_request(
    client: httpx.AsyncClient,
) -> None:
    response = await client.get(
        "/billing/orders", params={"cursor": "not-a-cursor"}, headers=as_user(USER_ID)
    )

    assert response.status_code == 400


async def test_entitlements_list_what_may_be_used_now_and_every_one_on_request(
    client: httpx.AsyncClient, db: Database
) -> None:
    kept = await store_order(db, status="paid", lines=[{"product_id": "pro-month"}])
    lost = await store_order(
        db, status="paid", payment_intent="pi_Lost0009", lines=[{"product_id": "field-guide"}]
    )
    async with db.sessionmaker() as session, session.begin():
        await fulfil(session, Order.id.in_([kept, lost]))
    await apply(
        db,
        stripe_events.event(
            "refund.created", stripe_events.refund(payment_intent="pi_Lost0009", amount=2000)
        ),
    )

    current = await client.get("/billing/entitlements", headers=as_user(USER_ID))
    every = await client.get(
        "/billing/entitlements", params={"status": "all"}, headers=as_user(USER_ID)
    )
    someone_else = await client.get("/billing/entitlements", headers=as_user(OTHER_USER))

    assert [(e["product_id"], e["status"], e["source_id"]) for e in current.json()["data"]] == [
        ("pro-month", "active", kept)
    ]
    assert sorted((e["product_id"], e["status"]) for e in every.json()["data"]) == [
        ("field-guide", "revoked"),
        ("pro-month", "active"),
    ]
    assert set(current.json()["data"][0]) == {
        "product_id",
        "status",
        "source",
        "source_id",
        "granted_at",
        "ends_at",
    }
    assert someone_else.json()["data"] == []


async def test_an_unknown_status_filter_is_refused(client: httpx.AsyncClient) -> None:
    response = await client.get(
        "/billing/entitlements", params={"status": "revoked"}, headers=as_user(USER_ID)
    )

    assert response.status_code == 400
