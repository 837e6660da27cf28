"""``GET /billing/invoices`` and ``GET /billing/invoices/{id}``: the signed-in user's invoices.

An invoice belongs to the user its row names, or — while the worker has not linked it yet — to
the user whose Stripe customer it was issued to. Anyone else's invoice is a 404, never a 403.
"""

from __future__ import annotations

import base64
import binascii
from typing import Annotated, Any

import msgspec
from litestar import get
from litestar.di import NamedDependency, Provide
from litestar.params import PathParameter, QueryParameter
from sqlalchemy import ColumnElement, and_, or_, select, tuple_
from sqlalchemy.ext.asyncio import AsyncSession

from facturation_service.bounds import INT64_MAX, INT64_MIN
from facturation_service.models import Invoice, InvoiceLine, StripeCustomer
from facturation_service.routes import Identity, provide_identity
from shared import BadRequestError, NotFoundError

__all__ = ["ROUTE_HANDLERS", "InvoiceDetail", "InvoicePage", "InvoiceSummary"]

DEFAULT_PAGE_SIZE = 20
MAX_PAGE_SIZE = 100


class InvoiceSummary(msgspec.Struct):
    id: str
    number: str | None
    status: str | None
    currency: str
    amount_due: int
    amount_paid: int
    amount_remaining: int
    subtotal: int
    total: int
    created: int
    period_start: int | None
    period_end: int | None
    hosted_invoice_url: str | None
    invoice_pdf: str | None
    status_transitions: dict[str, Any]


class InvoiceLineView(msgspec.Struct):
    id: str
    description: str | None
    amount: int
    currency: str
    quantity: int | None
    price: str | None
    period_start: int | None
    period_end: int | None


class InvoiceDetail(InvoiceSummary):
    lines: list[InvoiceLineView]


class InvoicePage(msgspec.Struct):
    data: list[InvoiceSummary]
    has_more: bool
    next_cursor: str | None
    """Pass as ``cursor`` to get the next page; ``None`` on the last page."""


def _summary_fields(invoice: Invoice) -> dict[str, Any]:
    return {field: getattr(invoice, field) for field in InvoiceSummary.__struct_fields__}


def _owned_by(user_id: str) -> ColumnElement[bool]:
    customers_of_user = select(StripeCustomer.user_stripe_id).where(
        StripeCustomer.user_id == user_id
    )
    return or_(
        Invoice.user_id == user_id,
        and_(Invoice.user_id.is_(None), Invoice.customer.in_(customers_of_user)),
    )


def encode_cursor(invoice: Invoice) -> str:
    return base64.urlsafe_b64encode(f"{invoice.created}:{invoice.id}".encode()).decode()


_BAD_CURSOR = "The cursor is not one this API returned."


def decode_cursor(cursor: str) -> tuple[int, str]:
    try:
        created, _, invoice_id = base64.urlsafe_b64decode(cursor.encode()).decode().partition(":")
        if not invoice_id or len(invoice_id) > 255:
            raise ValueError(cursor)
        created_at = int(created)
        if not INT64_MIN <= created_at <= INT64_MAX:  # the database would refuse the bind
            raise ValueError(cursor)
    except (ValueError, binascii.Error, UnicodeDecodeError):
        raise BadRequestError(_BAD_CURSOR) from None
    return created_at, invoice_id


async def list_user_invoices(
    session: AsyncSession, user_id: str, *, limit: int, cursor: str | None
) -> InvoicePage:
    """Newest first, by Stripe's creation time then id (a stable order for the cursor)."""
    query = select(Invoice).where(_owned_by(user_id))
    if cursor:
        created, invoice_id = decode_cursor(cursor)
        query = query.where(tuple_(Invoice.created, Invoice.id) < tuple_(created, invoice_id))
    query = query.order_by(Invoice.created.desc(), Invoice.id.desc()).limit(limit + 1)
    invoices = list((await session.scalars(query)).all())
    has_more = len(invoices) > limit
    invoices = invoices[:limit]
    return InvoicePage(
        data=[InvoiceSummary(**_summary_fields(invoice)) for invoice in invoices],
        has_more=has_more,
        next_cursor=encode_cursor(invoices[-1]) if has_more else None,
    )


async def get_user_invoice(session: AsyncSession, user_id: str, invoice_id: str) -> InvoiceDetail:
    invoice = (
        await session.scalars(select(Invoice).where(Invoice.id == invoice_id, _owned_by(user_id)))
    ).one_or_none()
    if invoice is None:
        raise NotFoundError(f"No invoice {invoice_id} for this user.")
    lines = (
        await session.scalars(
            select(InvoiceLine)
            .where(InvoiceLine.invoice_id == invoice.id)
            .order_by(InvoiceLine.position)
        )
    ).all()
    return InvoiceDetail(
        **_summary_fields(invoice),
        lines=[
            InvoiceLineView(
                id=line.id,
                description=line.description,
                amount=line.amount,
                currency=line.currency,
                quantity=line.quantity,
                price=line.price,
                period_start=line.period_start,
                period_end=line.period_end,
            )
            for line in lines
        ],
    )


_with_user = {"identity": Provide(provide_identity)}


@get("/billing/invoices", dependencies=_with_user)
async def list_invoices(
    identity: NamedDependency[Identity],
    db_session: NamedDependency[AsyncSession],
    limit: Annotated[int, QueryParameter(ge=1, le=MAX_PAGE_SIZE)] = DEFAULT_PAGE_SIZE,
    cursor: Annotated[
        str | None, QueryParameter(max_length=600, pattern="^[A-Za-z0-9_=-]+$")
    ] = None,
) -> InvoicePage:
    return await list_user_invoices(db_session, identity.user_id, limit=limit, cursor=cursor)


@get("/billing/invoices/{invoice_id:str}", dependencies=_with_user)
async def get_invoice(
    invoice_id: Annotated[str, PathParameter(max_length=255)],
    identity: NamedDependency[Identity],
    db_session: NamedDependency[AsyncSession],
) -> InvoiceDetail:
    return await get_user_invoice(db_session, identity.user_id, invoice_id)


ROUTE_HANDLERS = [list_invoices, get_invoice]
