"""``GET /billing/invoices/{id}/pdf``: one stored document per invoice state, served with its
SHA-256 as ETag; the owner only; drafts and rendering failures change nothing."""

from __future__ import annotations

import asyncio
import hashlib
import io
import time
from collections.abc import AsyncIterator
from typing import Any

import httpx
import msgspec
import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from litestar import Litestar
from pypdf import PdfReader
from sqlalchemy import select, update
from sqlalchemy.engine import Connection

from facturation_service.app import create_app
from facturation_service.invoices import apply_invoice_snapshot, decode_invoice
from facturation_service.models import Base, Invoice, InvoiceDocument, StripeCustomer
from shared import PROBLEM_MEDIA_TYPE, Database
from tests.support import stripe_events
from tests.support.webhook_app import webhook_settings
from tests.unit.facturation_service.conftest import FakeAuth, running

ADA = "11111111-2222-4333-8444-00000000000a"
BOB = "11111111-2222-4333-8444-00000000000b"


@pytest.fixture
async def database(db: Database) -> Database:
    async with db.sessionmaker() as session, session.begin():
        session.add(StripeCustomer(user_id=ADA, user_stripe_id="cus_Ada", email="a@example.com"))
        session.add(StripeCustomer(user_id=BOB, user_stripe_id="cus_Bob", email="b@example.com"))
    return db


@pytest.fixture
def app(facturation_url: str) -> Litestar:
    return create_app(
        webhook_settings(
            facturation_url,
            facturation_webhook_worker=False,
            seller_name="Seller Unit SARL",
            seller_address="9 quai des Tests; 69000 Lyon",
            seller_tax_id="FR99999999999",
        ),
        auth=FakeAuth(),
    )


@pytest.fixture
async def client(app: Litestar) -> AsyncIterator[httpx.AsyncClient]:
    async with running(app) as http:
        yield http


def as_user(user_id: str) -> dict[str, str]:
    return {"X-User-Id": user_id, "X-User-Email": "someone@example.com"}


async def store(database: Database, invoice: dict[str, Any], *, at: int | None = None) -> None:
    """The invoice as the worker stores it from an event created ``at``."""
    async with database.sessionmaker() as session, session.begin():
        await apply_invoice_snapshot(
            session,
            decode_invoice(msgspec.json.encode(invoice)),
            snapshot_created=at if at is not None else int(time.time()),
        )


def open_invoice(customer: str = "cus_Ada") -> dict[str, Any]:
    invoice = stripe_events.invoice(
        "open", customer=customer, lines=[("Pro plan", 1500, 1), ("Sticker pack", 250, 2)]
    )
    invoice.update(customer_name="Ada Lovelace", customer_email="ada@example.com")
    invoice.update(amount_paid=0, amount_remaining=invoice["total"])
    return invoice


def paid(invoice: dict[str, Any]) -> dict[str, Any]:
    now = int(time.time())
    changed = {**invoice, "status": "paid", "amount_paid": invoice["total"]}
    changed.update(amount_remaining=0)
    changed["status_transitions"] = {**invoice["status_transitions"], "paid_at": now}
    return changed


async def documents(database: Database, invoice_id: str) -> list[InvoiceDocument]:
    async with database.sessionmaker() as session:
        query = select(InvoiceDocument).where(InvoiceDocument.invoice_id == invoice_id)
        return list((await session.scalars(query.order_by(InvoiceDocument.id))).all())


def text_of(document: bytes) -> str:
    return "\n".join(page.extract_text() for page in PdfReader(io.BytesIO(document)).pages)


async def test_the_owner_downloads_the_invoice_as_an_attached_pdf_tagged_with_its_sha256(
    client: httpx.AsyncClient, database: Database
) -> None:
    invoice = open_invoice()
    await store(database, invoice)

    response = await client.get(f"/billing/invoices/{invoice['id']}/pdf", headers=as_user(ADA))

    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/pdf"
    assert response.headers["content-disposition"] == (
        f'attachment; filename="{invoice["number"]}.pdf"'
    )
    assert response.content.startswith(b"%PDF-")
    sha256 = hashlib.sha256(response.content).hexdigest()
    assert response.headers["etag"] == f'"{sha256}"'
    text = text_of(response.content)
    for expected in (
        invoice["number"],
        "Ada Lovelace",
        "ada@example.com",
        "Seller Unit SARL",
        "9 quai des Tests",
        "69000 Lyon",
        "Tax ID: FR99999999999",
        "Pro plan 1 €15.00 €15.00",
        "Sticker pack 2 €2.50 €5.00",
        "Total €20.00",
        "Amount remaining €20.00",
        "DUE",
    ):
        assert expected in text, expected
    (stored,) = await documents(database, invoice["id"])
    assert (stored.state, stored.sha256, stored.size) == ("open", sha256, len(response.content))
    assert stored.content == response.content


async def test_a_second_request_serves_the_same_bytes_and_etag_and_a_matching_tag_gets_304(
    client: httpx.AsyncClient, database: Database
) -> None:
    invoice = open_invoice()
    await store(database, invoice)
    path = f"/billing/invoices/{invoice['id']}/pdf"

    first = await client.get(path, headers=as_user(ADA))
    second = await client.get(path, headers=as_user(ADA))
    revalidated = await client.get(
        path, headers={**as_user(ADA), "If-None-Match": f'W/"other", {first.headers["etag"]}'}
    )
    stale = await client.get(path, headers={**as_user(ADA), "If-None-Match": '"other"'})

    assert second.status_code == 200
    assert second.content == first.content
    assert second.headers["etag"] == first.headers["etag"]
    assert revalidated.status_code == 304
    assert revalidated.content == b""
    assert revalidated.headers["etag"] == first.headers["etag"]
    assert stale.status_code == 200
    assert stale.content == first.content
    assert len(await documents(database, invoice["id"])) == 1


async def test_paying_the_invoice_makes_a_new_document_and_the_open_one_stays(
    client: httpx.AsyncClient, database: Database
) -> None:
    invoice = open_invoice()
    created = int(time.time())
    await store(database, invoice, at=created)
    path = f"/billing/invoices/{invoice['id']}/pdf"
    while_open = await client.get(path, headers=as_user(ADA))

    await store(database, paid(invoice), at=created + 5)
    once_paid = await client.get(path, headers=as_user(ADA))
    revalidated = await client.get(
        path, headers={**as_user(ADA), "If-None-Match": while_open.headers["etag"]}
    )

    assert once_paid.status_code == 200
    assert once_paid.headers["etag"] != while_open.headers["etag"]
    assert "PAID" in text_of(once_paid.content)
    assert "Amount remaining €0.00" in text_of(once_paid.content)
    assert revalidated.status_code == 200  # the open document's tag is stale now
    assert revalidated.content == once_paid.content
    open_document, paid_document = await documents(database, invoice["id"])
    assert (open_document.state, paid_document.state) == ("open", "paid")
    assert open_document.content == while_open.content
    assert paid_document.content == once_paid.content


async def test_twenty_concurrent_first_requests_store_one_document_and_serve_its_bytes(
    client: httpx.AsyncClient, database: Database
) -> None:
    invoice = open_invoice()
    await store(database, invoice)
    path = f"/billing/invoices/{invoice['id']}/pdf"

    responses = await asyncio.gather(*(client.get(path, headers=as_user(ADA)) for _ in range(20)))

    assert {response.status_code for response in responses} == {200}
    assert len({response.content for response in responses}) == 1
    assert len({response.headers["etag"] for response in responses}) == 1
    assert len(await documents(database, invoice["id"])) == 1


async def test_someone_elses_invoice_and_an_unknown_id_are_both_404(
    client: httpx.AsyncClient, database: Database
) -> None:
    bobs = open_invoice(customer="cus_Bob")
    await store(database, bobs)

    someone_elses = await client.get(f"/billing/invoices/{bobs['id']}/pdf", headers=as_user(ADA))
    unknown = await client.get("/billing/invoices/in_doesnotexist/pdf", headers=as_user(ADA))

    for response in (someone_elses, unknown):
        assert response.status_code == 404
        assert response.headers["content-type"].startswith(PROBLEM_MEDIA_TYPE)
    assert await documents(database, bobs["id"]) == []


async def test_without_a_signed_in_user_the_route_is_401(
    client: httpx.AsyncClient, database: Database
) -> None:
    invoice = open_invoice()
    await store(database, invoice)

    response = await client.get(f"/billing/invoices/{invoice['id']}/pdf")

    assert response.status_code == 401
    assert await documents(database, invoice["id"]) == []


async def test_a_draft_without_a_number_is_409_with_a_clear_detail(
    client: httpx.AsyncClient, database: Database
) -> None:
    draft = stripe_events.invoice("draft", customer="cus_Ada")
    await store(database, draft)

    response = await client.get(f"/billing/invoices/{draft['id']}/pdf", headers=as_user(ADA))

    assert response.status_code == 409
    assert response.headers["content-type"].startswith(PROBLEM_MEDIA_TYPE)
    assert "draft without a number" in response.json()["detail"]
    assert await documents(database, draft["id"]) == []


async def test_a_rendering_failure_is_a_500_problem_and_stores_nothing(
    client: httpx.AsyncClient, database: Database
) -> None:
    invoice = open_invoice()
    await store(database, invoice)
    # A stored snapshot the renderer cannot read: a line amount that is not a number.
    broken = {**invoice, "lines": {**invoice["lines"], "data": [{"amount": "twelve"}]}}
    async with database.sessionmaker() as session, session.begin():
        await session.execute(update(Invoice).where(Invoice.id == invoice["id"]).values(raw=broken))

    response = await client.get(f"/billing/invoices/{invoice['id']}/pdf", headers=as_user(ADA))

    assert response.status_code == 500
    assert response.headers["content-type"].startswith(PROBLEM_MEDIA_TYPE)
    assert "could not be rendered" in response.json()["detail"]
    assert await documents(database, invoice["id"]) == []


def _document_table_differences(connection: Connection) -> list[Any]:
    differences = compare_metadata(MigrationContext.configure(connection), Base.metadata)
    return [diff for diff in differences if "invoice_documents" in repr(diff)]


async def test_migration_0003_builds_the_documents_table_the_model_describes(db: Database) -> None:
    async with db.engine.connect() as connection:
        assert await connection.run_sync(_document_table_differences) == []
