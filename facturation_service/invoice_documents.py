"""Invoice documents: the PDF of an invoice, rendered once per invoice state and kept.

A document is rendered from the stored snapshot the first time someone asks for the invoice in
its current state (open, paid, void, uncollectible) and stored with its SHA-256. The unique key
on ``(invoice_id, state)`` decides which of two concurrent first requests stores it; both then
serve the stored row, so one state always serves the same bytes. When the invoice moves on
(open → paid, → void), the next request stores a new document and the old one stays for audit.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from facturation_service.invoices import owned_by
from facturation_service.models import Invoice, InvoiceDocument, utcnow
from facturation_service.settings import FacturationSettings
from shared import ConflictError, NotFoundError, ServerError

__all__ = [
    "Renderer",
    "Seller",
    "StoredDocument",
    "current_document",
    "render_document",
    "seller_from_settings",
]

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Seller:
    """Who issues the invoices (``SELLER_NAME``, ``SELLER_ADDRESS``, ``SELLER_TAX_ID``)."""

    name: str
    address: tuple[str, ...] = ()
    tax_id: str = ""


Renderer = Callable[[dict[str, Any], Seller], bytes]


def render_document(raw: dict[str, Any], seller: Seller) -> bytes:
    """fpdf2's rendering of ``invoice_pdf.py``, imported by the first document rendered: the
    library holds about 30 MB of memory, which a process that renders no document (the
    intake, the worker process, a replica nobody asks for a PDF) does not need."""
    from facturation_service.invoice_pdf import render_invoice_pdf

    return render_invoice_pdf(raw, seller)


@dataclass(frozen=True, slots=True)
class StoredDocument:
    number: str
    state: str
    content: bytes
    sha256: str


def seller_from_settings(settings: FacturationSettings) -> Seller:
    address = tuple(part.strip() for part in settings.seller_address.split(";") if part.strip())
    return Seller(name=settings.seller_name, address=address, tax_id=settings.seller_tax_id)


async def _stored(session: AsyncSession, invoice_id: str, state: str) -> StoredDocument | None:
    document = (
        await session.scalars(
            select(InvoiceDocument).where(
                InvoiceDocument.invoice_id == invoice_id, InvoiceDocument.state == state
            )
        )
    ).one_or_none()
    if document is None:
        return None
    return StoredDocument(
        number=document.number,
        state=document.state,
        content=document.content,
        sha256=document.sha256,
    )


async def current_document(
    session: AsyncSession,
    user_id: str,
    invoice_id: str,
    seller: Seller,
    *,
    render: Renderer = render_document,
) -> StoredDocument:
    """The document of the user's invoice in its current state, rendered and stored if new.

    Raises:
        NotFoundError: no such invoice for this user.
        ConflictError: the invoice is a draft without a number.
        ServerError: rendering failed; nothing was stored.
    """
    invoice = (
        await session.scalars(select(Invoice).where(Invoice.id == invoice_id, owned_by(user_id)))
    ).one_or_none()
    if invoice is None:
        raise NotFoundError(f"No invoice {invoice_id} for this user.")
    if not invoice.number or not invoice.status or invoice.status == "draft":
        raise ConflictError(
            f"Invoice {invoice_id} is a draft without a number yet; "
            "its document exists once the invoice is finalized."
        )
    state, number, raw = invoice.status, invoice.number, invoice.raw
    stored = await _stored(session, invoice_id, state)
    # End the read before rendering: no connection or snapshot is held while the CPU works.
    await session.rollback()
    if stored is not None:
        return stored

    try:
        content = await asyncio.to_thread(render, raw, seller)
    except Exception:
        logger.exception("invoice document rendering failed", extra={"invoice_id": invoice_id})
        raise ServerError(f"The document of invoice {invoice_id} could not be rendered.") from None

    values: dict[str, Any] = {
        "invoice_id": invoice_id,
        "state": state,
        "number": number,
        "content": content,
        "sha256": hashlib.sha256(content).hexdigest(),
        "size": len(content),
        "created_at": utcnow(),
    }
    unique_key = ["invoice_id", "state"]
    if session.get_bind().dialect.name == "postgresql":
        statement: Any = postgresql.insert(InvoiceDocument).values(**values)
    else:
        statement = sqlite.insert(InvoiceDocument).values(**values)
    await session.execute(statement.on_conflict_do_nothing(index_elements=unique_key))
    await session.commit()
    # Whoever stored first wins; everyone serves the stored bytes.
    stored = await _stored(session, invoice_id, state)
    await session.rollback()
    if stored is None:  # the invoice (and its documents) was deleted in between
        raise NotFoundError(f"No invoice {invoice_id} for this user.")
    return stored
