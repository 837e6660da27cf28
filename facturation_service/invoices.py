"""Invoices: persisted from Stripe's ``invoice.*`` events, read by the user they belong to.

Events arrive duplicated, concurrently and out of order. Each carries a full snapshot of the
invoice; the stored row keeps the newest one, ordered by the event's ``created`` and then by
status rank (draft < open < uncollectible < paid = void). The comparison happens inside the one
``INSERT ... ON CONFLICT DO UPDATE ... WHERE`` statement, which holds the row lock while it
decides, so two workers applying two snapshots at once cannot both win.

An invoice belongs to the user its row names, or — while the worker has not linked it yet — to
the user whose Stripe customer it was issued to.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Sequence
from datetime import datetime
from typing import Any, cast

import msgspec
from sqlalchemy import (
    Boolean,
    ColumnElement,
    Table,
    and_,
    bindparam,
    delete,
    literal_column,
    or_,
    select,
    tuple_,
    update,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from facturation_service.bounds import INT64_MAX, INT64_MIN, check_int64
from facturation_service.models import Invoice, InvoiceLine, StripeCustomer, utcnow
from facturation_service.schemas import InvoiceDetail, InvoiceLineView, InvoicePage, InvoiceSummary
from facturation_service.snapshots import (
    bound_columns,
    upsert_unless_newer_stored,
    user_of_customer,
)
from shared import BadRequestError, NotFoundError, insert_rows

__all__ = [
    "INVOICE_EVENT_TYPES",
    "InvoiceDocument",
    "InvoiceSnapshot",
    "apply_invoice_snapshot",
    "apply_invoice_snapshots",
    "decode_invoice",
    "get_user_invoice",
    "link_invoices_to_users",
    "list_user_invoices",
    "owned_by",
    "status_rank",
]

INVOICE_EVENT_TYPES = frozenset(
    {
        "invoice.created",
        "invoice.finalized",
        "invoice.updated",
        "invoice.paid",
        "invoice.payment_succeeded",
        "invoice.payment_failed",
        "invoice.voided",
        "invoice.marked_uncollectible",
    }
)

_STATUS_RANKS = {"draft": 0, "open": 1, "uncollectible": 2, "paid": 3, "void": 3}


def status_rank(status: str | None) -> int:
    return _STATUS_RANKS.get(status or "", 0)


class _Period(msgspec.Struct):
    start: int | None = None
    end: int | None = None


class _PriceDetails(msgspec.Struct):
    price: str | dict[str, Any] | None = None


class _Pricing(msgspec.Struct):
    price_details: _PriceDetails | None = None


class LineSnapshot(msgspec.Struct):
    id: str
    amount: int
    currency: str
    description: str | None = None
    quantity: int | None = None
    period: _Period | None = None
    pricing: _Pricing | None = None

    @property
    def price(self) -> str | None:
        details = self.pricing.price_details if self.pricing else None
        price = details.price if details else None
        if isinstance(price, dict):
            return str(price.get("id")) if price.get("id") else None
        return price


class _LineList(msgspec.Struct):
    data: list[LineSnapshot] = []
    has_more: bool = False


class _LinesAsSent(msgspec.Struct):
    data: list[msgspec.Raw] = []


class _InvoiceLinesAsSent(msgspec.Struct):
    """Each line of an invoice as Stripe wrote it (a line's ``raw`` column)."""

    lines: _LinesAsSent = msgspec.field(default_factory=_LinesAsSent)


class InvoiceSnapshot(msgspec.Struct):
    """What the service uses of a Stripe invoice; unknown fields are accepted (and kept raw)."""

    id: str
    currency: str
    created: int
    customer: str | dict[str, Any] | None = None
    number: str | None = None
    status: str | None = None
    amount_due: int = 0
    amount_paid: int = 0
    amount_remaining: int = 0
    subtotal: int = 0
    total: int = 0
    hosted_invoice_url: str | None = None
    invoice_pdf: str | None = None
    period_start: int | None = None
    period_end: int | None = None
    status_transitions: dict[str, Any] = {}
    lines: _LineList = msgspec.field(default_factory=_LineList)
    parent: Any = None
    """What the invoice was issued for: a subscription's renewal names it in
    ``subscription_details`` (read by ``subscriptions.paid_invoice_period``)."""

    @property
    def customer_id(self) -> str | None:
        if isinstance(self.customer, dict):
            return str(self.customer.get("id")) if self.customer.get("id") else None
        return self.customer


_INVOICES = Invoice.__table__
# Core inserts: the ORM's bulk path costs more per row and adds nothing here.
_LINES = cast("Table", InvoiceLine.__table__)
_SNAPSHOT_COLUMNS = (
    "id",
    "customer",
    "number",
    "status",
    "currency",
    "amount_due",
    "amount_paid",
    "amount_remaining",
    "subtotal",
    "total",
    "hosted_invoice_url",
    "invoice_pdf",
    "period_start",
    "period_end",
    "created",
    "status_transitions",
    "raw",
    "snapshot_created",
    "status_rank",
    "updated_at",
)


def _build_upsert(dialect: Any) -> Any:
    """The conditional upsert, built once per dialect so each event only binds parameters."""
    statement = upsert_unless_newer_stored(
        dialect,
        _INVOICES,
        {**bound_columns(_INVOICES, _SNAPSHOT_COLUMNS), "user_id": user_of_customer("p_user_of")},
        key=("snapshot_created", "status_rank"),
        ties_replace=True,
        keep_stored=("user_id",),
    )
    if dialect is postgresql:
        # A row the statement inserted has no deleting transaction (xmax 0); one it replaced
        # does. A new invoice has no lines yet (they reference it), so nothing to delete.
        statement = statement.returning(literal_column("xmax = 0", Boolean).label("inserted"))
    return statement


_UPSERTS = {"postgresql": _build_upsert(postgresql), "sqlite": _build_upsert(sqlite)}
_DELETE_LINES = delete(_LINES).where(
    _LINES.c.invoice_id.in_(bindparam("p_invoices", expanding=True))
)


class InvoiceDocument(msgspec.Struct, frozen=True):
    """One Stripe invoice: its JSON as Stripe wrote it, less the whitespace (stored as it is,
    in ``raw``), and what the service reads of it (see :func:`decode_invoice`)."""

    json: bytes
    snapshot: InvoiceSnapshot
    lines_as_sent: list[msgspec.Raw]
    """Each of ``snapshot.lines.data`` as Stripe wrote it."""


_INVOICE = msgspec.json.Decoder(InvoiceSnapshot)
_LINES_AS_SENT = msgspec.json.Decoder(_InvoiceLinesAsSent)


def decode_invoice(document: bytes) -> InvoiceDocument:
    """The invoice whose JSON is ``document`` (an event's ``data.object``, as Stripe wrote it).

    Decoded straight from the JSON into what the service reads, and kept as it came: decoding
    the whole event into dictionaries, reading them and encoding the invoice again for its
    ``raw`` column took nearly twice as long, a sixth of the worker's CPU an event
    (``docs/benchmarks.md``).

    Raises:
        msgspec.DecodeError: the document is not an invoice this service can store (its
            ``msgspec.ValidationError`` names the field).
    """
    # Stripe indents its JSON: stored without the whitespace, a quarter fewer bytes to send,
    # check and compress (the text is otherwise Stripe's, and reads back the same).
    compact = msgspec.json.format(document, indent=-1)
    snapshot = _INVOICE.decode(compact)
    lines_as_sent = _LINES_AS_SENT.decode(compact).lines.data
    return InvoiceDocument(compact, snapshot, lines_as_sent)


async def apply_invoice_snapshot(
    session: AsyncSession, document: InvoiceDocument, *, snapshot_created: int
) -> bool:
    """Store this snapshot unless a newer one is stored; ``True`` when it was applied.

    Runs in the caller's transaction; its first statement writes, so on SQLite the transaction
    takes the write lock at once instead of failing to upgrade a read lock.

    Raises:
        UnprocessableError: an amount, time or quantity does not fit its 64-bit column.
    """
    (applied,) = await apply_invoice_snapshots(session, [(document, snapshot_created)])
    return applied


async def apply_invoice_snapshots(
    session: AsyncSession, snapshots: Sequence[tuple[InvoiceDocument, int]]
) -> list[bool]:
    """:func:`apply_invoice_snapshot` for each ``(document, snapshot_created)``, in this order,
    with one upsert and one line insert for each run of distinct invoices: the worker's batch of
    events costs a few round trips instead of two per event. Each row is still compared with
    the stored one by the upsert's own ``WHERE``, under its row lock, so the outcome is that of
    applying the snapshots one by one; a snapshot of an invoice already in the run starts the
    next run, so it is compared with what the run stored. Raises as
    :func:`apply_invoice_snapshot`, before anything is written when a snapshot is invalid.
    """
    prepared = [_prepare(document, snapshot_created) for document, snapshot_created in snapshots]
    # Core statements on the transaction's connection: the ORM session's execute path costs
    # more per statement than the statement's own work here, and there is no object to track.
    connection = await session.connection()
    applied: list[bool] = []
    run: dict[str, _Prepared] = {}
    for item in prepared:
        if item.snapshot.id in run:
            applied.extend(await _apply_run(connection, list(run.values())))
            run = {}
        run[item.snapshot.id] = item
    if run:
        applied.extend(await _apply_run(connection, list(run.values())))
    return applied


class _Prepared(msgspec.Struct):
    snapshot: InvoiceSnapshot
    lines_as_sent: list[msgspec.Raw]
    parameters: dict[str, Any]


def _prepare(document: InvoiceDocument, snapshot_created: int) -> _Prepared:
    snapshot = document.snapshot
    _check_bounds(snapshot, snapshot_created)
    parameters: dict[str, Any] = {
        "p_id": snapshot.id,
        "p_customer": snapshot.customer_id,
        "p_user_of": snapshot.customer_id,
        "p_number": snapshot.number,
        "p_status": snapshot.status,
        "p_currency": snapshot.currency,
        "p_amount_due": snapshot.amount_due,
        "p_amount_paid": snapshot.amount_paid,
        "p_amount_remaining": snapshot.amount_remaining,
        "p_subtotal": snapshot.subtotal,
        "p_total": snapshot.total,
        "p_hosted_invoice_url": snapshot.hosted_invoice_url,
        "p_invoice_pdf": snapshot.invoice_pdf,
        "p_period_start": snapshot.period_start,
        "p_period_end": snapshot.period_end,
        "p_created": snapshot.created,
        "p_status_transitions": snapshot.status_transitions,
        # Written by the JSON columns' serializer as it is (msgspec encodes a Raw verbatim).
        "p_raw": msgspec.Raw(document.json),
        "p_snapshot_created": snapshot_created,
        "p_status_rank": status_rank(snapshot.status),
        "p_updated_at": utcnow(),
    }
    return _Prepared(snapshot, document.lines_as_sent, parameters)


async def _apply_run(connection: AsyncConnection, run: list[_Prepared]) -> list[bool]:
    """Snapshots of distinct invoices: one upsert (many rows), then their lines."""
    statement = _UPSERTS[connection.dialect.name]
    # Rows in id order: two workers upserting overlapping runs lock them in the same order.
    ordered = sorted(run, key=lambda item: item.snapshot.id)
    stored_rows: list[Any] = []
    for start, size in _chunks(len(ordered)):
        chunk = [item.parameters for item in ordered[start : start + size]]
        result = await connection.execute(statement, chunk[0] if size == 1 else chunk)
        stored_rows.extend(result.all())
    # SQLite does not say whether a row was inserted: its lines are deleted anyway.
    stored = {row.id: bool(getattr(row, "inserted", False)) for row in stored_rows}
    replaced = [item.snapshot.id for item in run if item.snapshot.id in stored]
    if connection.dialect.name == "postgresql":
        replaced = [invoice_id for invoice_id in replaced if not stored[invoice_id]]
    if replaced:
        await connection.execute(_DELETE_LINES, {"p_invoices": replaced})
    rows = [row for item in run if item.snapshot.id in stored for row in _line_rows(item)]
    await insert_rows(connection, _LINES, rows)
    return [item.snapshot.id in stored for item in run]


def _chunks(count: int) -> list[tuple[int, int]]:
    """``(start, size)`` of statements of 64, 32, ..., 1 rows covering ``count`` rows.

    A statement of n rows has its own SQL text, which each connection prepares and keeps
    (``prepared_statement_cache_size``); sizes from a fixed set keep that to 7 texts instead of
    one per run length seen, for a few more statements when a batch is not full.
    """
    chunks: list[tuple[int, int]] = []
    start, size = 0, 64
    while start < count:
        while size > count - start:
            size //= 2
        chunks.append((start, size))
        start += size
    return chunks


def _check_bounds(snapshot: InvoiceSnapshot, snapshot_created: int) -> None:
    check_int64(
        {
            "created": snapshot.created,
            "snapshot_created": snapshot_created,
            "amount_due": snapshot.amount_due,
            "amount_paid": snapshot.amount_paid,
            "amount_remaining": snapshot.amount_remaining,
            "subtotal": snapshot.subtotal,
            "total": snapshot.total,
            "period_start": snapshot.period_start,
            "period_end": snapshot.period_end,
        }
    )
    for line in snapshot.lines.data:
        check_int64(
            {
                "line amount": line.amount,
                "line quantity": line.quantity,
                "line period start": line.period.start if line.period else None,
                "line period end": line.period.end if line.period else None,
            }
        )


def _line_rows(item: _Prepared) -> list[dict[str, Any]]:
    invoice_id = item.snapshot.id
    return [
        {
            "invoice_id": invoice_id,
            "id": line.id,
            "position": position,
            "description": line.description,
            "amount": line.amount,
            "currency": line.currency,
            "quantity": line.quantity,
            "price": line.price,
            "period_start": line.period.start if line.period else None,
            "period_end": line.period.end if line.period else None,
            "raw": line_as_sent,
        }
        for position, (line, line_as_sent) in enumerate(
            zip(item.snapshot.lines.data, item.lines_as_sent, strict=True)
        )
    ]


async def link_invoices_to_users(
    session: AsyncSession, *, customer: str | None = None, mapped_since: datetime | None = None
) -> int:
    """Give invoices stored before their customer was mapped to a user their user; returns how
    many were linked. Runs in the caller's transaction.

    Args:
        customer: only this customer's invoices.
        mapped_since: only the invoices of customers mapped since then. Without it every invoice
            no user owns is looked at: the invoices of customers that are nobody's here (made
            in Stripe's dashboard, or by another app on the account) stay so forever, and
            200,000 of them took PostgreSQL 210-515 ms a sweep; with it, 0.1 ms (an index on
            the mapping's ``created_at``, another on the invoice's ``customer``).
    """
    user_of_customer = (
        select(StripeCustomer.user_id)
        .where(StripeCustomer.user_stripe_id == Invoice.customer)
        .scalar_subquery()
    )
    mapped = select(StripeCustomer.user_stripe_id)
    if mapped_since is not None:
        mapped = mapped.where(StripeCustomer.created_at >= mapped_since)
    statement = (
        update(Invoice)
        .where(Invoice.user_id.is_(None), Invoice.customer.in_(mapped))
        .values(user_id=user_of_customer)
        .execution_options(synchronize_session=False)
    )
    if customer is not None:
        statement = statement.where(Invoice.customer == customer)
    result = await session.execute(statement)
    return int(getattr(result, "rowcount", 0) or 0)


# --- reading: the signed-in user's invoices ---


def _summary_fields(invoice: Invoice) -> dict[str, Any]:
    return {field: getattr(invoice, field) for field in InvoiceSummary.__struct_fields__}


def owned_by(user_id: str) -> ColumnElement[bool]:
    customers_of_user = select(StripeCustomer.user_stripe_id).where(
        StripeCustomer.user_id == user_id
    )
    return or_(
        Invoice.user_id == user_id,
        and_(Invoice.user_id.is_(None), Invoice.customer.in_(customers_of_user)),
    )


def encode_cursor(invoice: Invoice) -> str:
    return base64.urlsafe_b64encode(f"{invoice.created}:{invoice.id}".encode()).decode()


def decode_cursor(cursor: str) -> tuple[int, str]:
    try:
        created, _, invoice_id = base64.urlsafe_b64decode(cursor.encode()).decode().partition(":")
        if not invoice_id or len(invoice_id) > 255:
            raise ValueError(cursor)
        created_at = int(created)
        if not INT64_MIN <= created_at <= INT64_MAX:  # the database would refuse the bind
            raise ValueError(cursor)
    except (ValueError, binascii.Error, UnicodeDecodeError):
        raise BadRequestError("The cursor is not one this API returned.") from None
    return created_at, invoice_id


async def list_user_invoices(
    session: AsyncSession, user_id: str, *, limit: int, cursor: str | None
) -> InvoicePage:
    """Newest first, by Stripe's creation time then id (a stable order for the cursor)."""
    query = select(Invoice).where(owned_by(user_id))
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
        await session.scalars(select(Invoice).where(Invoice.id == invoice_id, owned_by(user_id)))
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
