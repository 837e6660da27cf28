"""``GET /billing/invoices`` and ``/billing/invoices/{id}``: the caller's invoices only, newest
first, paginated; anyone else's is a 404."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator

import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient

from facturation_service.models import StripeCustomer
from facturation_service.worker import WebhookWorker
from shared import PROBLEM_MEDIA_TYPE, Database
from tests.support import stripe_events
from tests.support.webhook_app import journal_event, webhook_app_client

ADA = "11111111-2222-4333-8444-00000000000a"
BOB = "11111111-2222-4333-8444-00000000000b"


@pytest.fixture
async def database(facturation_url: str) -> AsyncIterator[Database]:
    database = Database(facturation_url)
    async with database.sessionmaker() as session, session.begin():
        session.add(StripeCustomer(user_id=ADA, user_stripe_id="cus_Ada", email="a@example.com"))
        session.add(StripeCustomer(user_id=BOB, user_stripe_id="cus_Bob", email="b@example.com"))
    yield database
    await database.dispose()


@pytest.fixture
async def client(facturation_url: str) -> AsyncIterator[AsyncTestClient[Litestar]]:
    async with webhook_app_client(facturation_url, facturation_webhook_worker=False) as test_client:
        yield test_client


def as_user(user_id: str) -> dict[str, str]:
    return {"X-User-Id": user_id, "X-User-Email": "someone@example.com"}


async def store_invoices(database: Database, customer: str, count: int) -> list[str]:
    """``count`` paid invoices, created one minute apart; ids returned newest first."""
    ids = []
    now = int(time.time())
    for index in range(count):
        invoice = stripe_events.invoice("paid", customer=customer, created=now - 3600 + 60 * index)
        await journal_event(database, stripe_events.event("invoice.paid", invoice))
        ids.append(invoice["id"])
    await WebhookWorker(database).drain()
    return ids[::-1]


async def test_the_list_holds_the_callers_invoices_newest_first_over_pages(
    client: AsyncTestClient[Litestar], database: Database
) -> None:
    ada_invoices = await store_invoices(database, "cus_Ada", 5)
    await store_invoices(database, "cus_Bob", 2)

    seen: list[str] = []
    cursor = None
    pages = 0
    while True:
        params: dict[str, str | int] = {"limit": 2}
        if cursor:
            params["cursor"] = cursor
        response = await client.get("/billing/invoices", params=params, headers=as_user(ADA))
        assert response.status_code == 200
        page = response.json()
        seen.extend(invoice["id"] for invoice in page["data"])
        pages += 1
        cursor = page["next_cursor"]
        if not page["has_more"]:
            assert cursor is None
            break

    assert seen == ada_invoices
    assert pages == 3
    first = (await client.get("/billing/invoices", headers=as_user(ADA))).json()["data"][0]
    assert first["status"] == "paid"
    assert first["amount_paid"] == first["total"] == 2000
    assert first["currency"] == "eur"


async def test_one_invoice_comes_with_its_lines(
    client: AsyncTestClient[Litestar], database: Database
) -> None:
    (invoice_id,) = await store_invoices(database, "cus_Ada", 1)

    response = await client.get(f"/billing/invoices/{invoice_id}", headers=as_user(ADA))

    assert response.status_code == 200
    invoice = response.json()
    assert invoice["id"] == invoice_id
    assert [
        (line["description"], line["amount"], line["quantity"]) for line in invoice["lines"]
    ] == [
        ("1 x Pro plan", 1500, 1),
        ("2 x Sticker pack", 500, 2),
    ]
    assert all(line["price"].startswith("price_") for line in invoice["lines"])


async def test_someone_elses_invoice_is_not_found(
    client: AsyncTestClient[Litestar], database: Database
) -> None:
    (invoice_id,) = await store_invoices(database, "cus_Ada", 1)

    response = await client.get(f"/billing/invoices/{invoice_id}", headers=as_user(BOB))
    listed = await client.get("/billing/invoices", headers=as_user(BOB))

    assert response.status_code == 404
    assert response.headers["content-type"].startswith(PROBLEM_MEDIA_TYPE)
    assert listed.json()["data"] == []


async def test_a_cursor_this_api_did_not_issue_is_a_400(
    client: AsyncTestClient[Litestar],
) -> None:
    response = await client.get(
        "/billing/invoices", params={"cursor": "not-a-cursor"}, headers=as_user(ADA)
    )

    assert response.status_code == 400
    assert response.headers["content-type"].startswith(PROBLEM_MEDIA_TYPE)


@pytest.mark.parametrize("limit", [0, 101, -1])
async def test_a_page_size_out_of_range_is_refused(
    client: AsyncTestClient[Litestar], limit: int
) -> None:
    response = await client.get("/billing/invoices", params={"limit": limit}, headers=as_user(ADA))

    assert response.status_code == 400


async def test_the_invoice_routes_need_a_user(client: AsyncTestClient[Litestar]) -> None:
    response = await client.get("/billing/invoices")

    assert response.status_code == 401
