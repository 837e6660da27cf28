"""An invoice as a PDF page (or several), rendered from the stored Stripe snapshot.

fpdf2 writes the PDF (pure Python, so no system library is needed); the fonts are committed
subsets (``fonts/README.md``): Noto Sans for Latin, Greek and Cyrillic and Droid Sans Fallback
for Chinese, Japanese and Korean, so a name such as "Łukasz Żółć" or "株式会社" is drawn with real
glyphs and extracted back as text. The output depends only on the snapshot and the seller: the
document's dates come from the invoice and nothing random is written, so one invoice state
always renders the same bytes.
"""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Any

import msgspec
from fpdf import FPDF
from fpdf.enums import TableBordersLayout, XPos, YPos
from fpdf.fonts import FontFace

if TYPE_CHECKING:
    from facturation_service.invoice_documents import Seller

__all__ = ["format_amount", "render_invoice_pdf"]

FONTS = Path(__file__).resolve().parent / "fonts"

# Stripe's zero-decimal and three-decimal currencies; every other one has two decimals.
_ZERO_DECIMAL = frozenset(
    [
        "bif",
        "clp",
        "djf",
        "gnf",
        "jpy",
        "kmf",
        "krw",
        "mga",
        "pyg",
        "rwf",
        "ugx",
        "vnd",
        "vuv",
        "xaf",
        "xof",
        "xpf",
    ]
)
_THREE_DECIMAL = frozenset(["bhd", "jod", "kwd", "omr", "tnd"])
_SYMBOLS = {"eur": "€", "usd": "$", "gbp": "£", "jpy": "¥"}


def _decimals(currency: str) -> int:
    if currency in _ZERO_DECIMAL:
        return 0
    return 3 if currency in _THREE_DECIMAL else 2


def format_amount(amount: int, currency: str) -> str:
    """Minor units as a person reads them: ``€1,234.50``, ``$0.99``, ``¥1,500``, ``12.50 CHF``."""
    currency = currency.lower()
    decimals = _decimals(currency)
    value = Decimal(abs(amount)).scaleb(-decimals)
    digits = f"{value:,.{decimals}f}"
    sign = "-" if amount < 0 else ""
    symbol = _SYMBOLS.get(currency)
    if symbol:
        return f"{sign}{symbol}{digits}"
    return f"{sign}{digits} {currency.upper()}"


# --- what the document reads from the snapshot (unknown fields are ignored) ---


class _Period(msgspec.Struct):
    start: int | None = None
    end: int | None = None


class _LinePricing(msgspec.Struct):
    unit_amount_decimal: str | None = None


class _LineParent(msgspec.Struct):
    type: str | None = None


class _Line(msgspec.Struct):
    amount: int
    description: str | None = None
    quantity: int | None = None
    period: _Period | None = None
    pricing: _LinePricing | None = None
    parent: _LineParent | None = None

    def unit_amount(self) -> Decimal:
        if self.pricing and self.pricing.unit_amount_decimal:
            return Decimal(self.pricing.unit_amount_decimal)
        return Decimal(self.amount) / (self.quantity or 1)

    @property
    def is_subscription(self) -> bool:
        if self.parent and self.parent.type == "subscription_item_details":
            return True
        # One-off items are stamped with a period of one instant; a service period has a length.
        return bool(self.period and self.period.start and self.period.end != self.period.start)


class _Lines(msgspec.Struct):
    data: list[_Line] = []


class _Tax(msgspec.Struct):
    amount: int = 0


class _Transitions(msgspec.Struct):
    finalized_at: int | None = None
    paid_at: int | None = None
    voided_at: int | None = None


class _Snapshot(msgspec.Struct):
    id: str
    currency: str
    created: int
    number: str | None = None
    status: str | None = None
    customer: str | dict[str, Any] | None = None
    customer_name: str | None = None
    customer_email: str | None = None
    subtotal: int = 0
    total: int = 0
    tax: int | None = None
    total_taxes: list[_Tax] | None = None
    amount_paid: int = 0
    amount_remaining: int = 0
    due_date: int | None = None
    effective_at: int | None = None
    status_transitions: _Transitions = msgspec.field(default_factory=_Transitions)
    lines: _Lines = msgspec.field(default_factory=_Lines)

    @property
    def tax_amount(self) -> int | None:
        if self.total_taxes:
            return sum(tax.amount for tax in self.total_taxes)
        return self.tax or None

    @property
    def issued_at(self) -> int:
        return self.status_transitions.finalized_at or self.effective_at or self.created

    @property
    def buyer(self) -> tuple[str | None, str | None]:
        expanded = self.customer if isinstance(self.customer, dict) else {}
        return (
            self.customer_name or expanded.get("name"),
            self.customer_email or expanded.get("email"),
        )


def _beyond_noto_sans(texts: list[str | None]) -> bool:
    """Whether a text needs the CJK font: Noto Sans (as subset here) ends before U+2E80."""
    return any(ord(char) >= 0x2E80 for text in texts if text for char in text)


def _date(timestamp: int) -> str:
    return datetime.fromtimestamp(timestamp, UTC).strftime("%d %b %Y")


_MARKS = {
    "paid": ("PAID", (22, 128, 61)),
    "void": ("VOID", (185, 28, 28)),
    "uncollectible": ("UNCOLLECTIBLE", (185, 28, 28)),
    "open": ("DUE", (30, 64, 175)),
}
_GREY = (90, 90, 90)


class _InvoicePdf(FPDF):
    def __init__(self, number: str, *, with_cjk: bool) -> None:
        super().__init__(format="A4", unit="mm")
        self.number = number
        self.add_font("Sans", "", FONTS / "NotoSans-Regular.ttf")
        self.add_font("Sans", "B", FONTS / "NotoSans-Bold.ttf")
        if with_cjk:
            # Loading it costs about a second, so only documents that need it load it.
            # Droid Sans Fallback has no bold face: CJK text in a bold run is drawn regular.
            self.add_font("CJK", "", FONTS / "DroidSansFallback-cjk.ttf")
            self.set_fallback_fonts(["CJK"], exact_match=False)
        self.set_margins(18, 18, 18)
        self.set_auto_page_break(auto=True, margin=20)
        self.alias_nb_pages()

    def footer(self) -> None:
        self.set_y(-14)
        self.set_font("Sans", size=8)
        self.set_text_color(*_GREY)
        self.cell(0, 5, f"Invoice {self.number} · page {self.page_no()}/{{nb}}", align="C")


def render_invoice_pdf(raw: dict[str, Any], seller: Seller) -> bytes:
    """The PDF of one stored invoice snapshot (Stripe's invoice object).

    Raises:
        msgspec.ValidationError: the snapshot is not an invoice.
        ValueError: the invoice has no number yet (a draft has no document).
    """
    invoice = msgspec.convert(raw, _Snapshot)
    if not invoice.number:
        raise ValueError(f"invoice {invoice.id} has no number yet")
    currency = invoice.currency.lower()
    texts = [seller.name, *seller.address, *invoice.buyer, invoice.number]
    texts.extend(line.description for line in invoice.lines.data)
    pdf = _InvoicePdf(invoice.number, with_cjk=_beyond_noto_sans(texts))
    pdf.set_title(f"Invoice {invoice.number}")
    pdf.set_author(seller.name)
    pdf.set_creator("facturation")
    pdf.set_producer("facturation")
    # The invoice's own time, never the clock: one state renders the same bytes every time.
    pdf.set_creation_date(datetime.fromtimestamp(invoice.issued_at, UTC))
    pdf.add_page()

    _header(pdf, invoice, seller)
    _lines_table(pdf, invoice, currency)
    _totals(pdf, invoice, currency)
    return bytes(pdf.output())


def _header(pdf: _InvoicePdf, invoice: _Snapshot, seller: Seller) -> None:
    width = pdf.epw
    top = pdf.get_y()
    pdf.set_font("Sans", "B", 20)
    pdf.cell(width / 2, 10, "Invoice", new_x=XPos.LMARGIN, new_y=YPos.NEXT)
    pdf.set_font("Sans", "", 10)
    pdf.cell(width / 2, 6, f"Number: {invoice.number}", new_x=XPos.LMARGIN, new_y=YPos.NEXT)
    pdf.cell(
        width / 2, 6, f"Issued: {_date(invoice.issued_at)}", new_x=XPos.LMARGIN, new_y=YPos.NEXT
    )
    if invoice.status_transitions.paid_at:
        pdf.cell(
            width / 2,
            6,
            f"Paid: {_date(invoice.status_transitions.paid_at)}",
            new_x=XPos.LMARGIN,
            new_y=YPos.NEXT,
        )
    elif invoice.due_date and invoice.status == "open":
        pdf.cell(
            width / 2, 6, f"Due: {_date(invoice.due_date)}", new_x=XPos.LMARGIN, new_y=YPos.NEXT
        )
    if invoice.status == "void" and invoice.status_transitions.voided_at:
        pdf.cell(
            width / 2,
            6,
            f"Voided: {_date(invoice.status_transitions.voided_at)}",
            new_x=XPos.LMARGIN,
            new_y=YPos.NEXT,
        )
    below_dates = pdf.get_y()

    mark = _MARKS.get(invoice.status or "")
    if mark:
        text, colour = mark
        pdf.set_xy(pdf.l_margin + width - 60, top)
        pdf.set_draw_color(*colour)
        pdf.set_text_color(*colour)
        pdf.set_line_width(0.8)
        pdf.set_font("Sans", "B", 18)
        pdf.cell(60, 14, text, border=1, align="C")
        pdf.set_text_color(0, 0, 0)
        pdf.set_draw_color(0, 0, 0)
        pdf.set_line_width(0.2)

    pdf.set_y(max(below_dates, top + 16) + 6)
    parties_top = pdf.get_y()
    column = width / 2 - 4
    pdf.set_font("Sans", "B", 9)
    pdf.set_text_color(*_GREY)
    pdf.cell(column, 5, "FROM", new_x=XPos.LMARGIN, new_y=YPos.NEXT)
    pdf.set_text_color(0, 0, 0)
    pdf.set_font("Sans", "B", 11)
    pdf.multi_cell(column, 5.5, seller.name, new_x=XPos.LMARGIN, new_y=YPos.NEXT)
    pdf.set_font("Sans", "", 10)
    for line in seller.address:
        pdf.multi_cell(column, 5, line, new_x=XPos.LMARGIN, new_y=YPos.NEXT)
    if seller.tax_id:
        pdf.multi_cell(column, 5, f"Tax ID: {seller.tax_id}", new_x=XPos.LMARGIN, new_y=YPos.NEXT)
    seller_bottom = pdf.get_y()

    buyer_x = pdf.l_margin + width / 2 + 4
    name, email = invoice.buyer
    pdf.set_xy(buyer_x, parties_top)
    pdf.set_font("Sans", "B", 9)
    pdf.set_text_color(*_GREY)
    pdf.cell(column, 5, "BILL TO", new_x=XPos.LEFT, new_y=YPos.NEXT)
    pdf.set_text_color(0, 0, 0)
    pdf.set_font("Sans", "B", 11)
    pdf.multi_cell(column, 5.5, name or "—", new_x=XPos.LEFT, new_y=YPos.NEXT)
    pdf.set_font("Sans", "", 10)
    if email:
        pdf.multi_cell(column, 5, email, new_x=XPos.LEFT, new_y=YPos.NEXT)
    pdf.set_xy(pdf.l_margin, max(seller_bottom, pdf.get_y()) + 8)


def _lines_table(pdf: _InvoicePdf, invoice: _Snapshot, currency: str) -> None:
    pdf.set_font("Sans", "", 9.5)
    heading = FontFace(emphasis="BOLD", fill_color=(235, 238, 243))
    with pdf.table(
        col_widths=(92, 16, 32, 34),
        text_align=("LEFT", "RIGHT", "RIGHT", "RIGHT"),
        headings_style=heading,
        borders_layout=TableBordersLayout.HORIZONTAL_LINES,
        line_height=5.5,
        padding=1.5,
    ) as table:
        table.row(("Description", "Qty", "Unit price", "Amount"))
        for line in invoice.lines.data:
            description = line.description or "—"
            if line.is_subscription and line.period and line.period.start and line.period.end:
                description += f"\nPeriod: {_date(line.period.start)} to {_date(line.period.end)}"
            # A fractional unit price (Stripe's unit_amount_decimal) is shown to the minor unit.
            unit = int(line.unit_amount().to_integral_value())
            table.row(
                (
                    description,
                    str(line.quantity if line.quantity is not None else 1),
                    format_amount(unit, currency),
                    format_amount(line.amount, currency),
                )
            )


def _totals(pdf: _InvoicePdf, invoice: _Snapshot, currency: str) -> None:
    rows: list[tuple[str, int, bool]] = [("Subtotal", invoice.subtotal, False)]
    tax = invoice.tax_amount
    if tax:
        rows.append(("Tax", tax, False))
    rows.append(("Total", invoice.total, True))
    rows.append(("Amount paid", invoice.amount_paid, False))
    rows.append(("Amount remaining", invoice.amount_remaining, True))
    # Keep the block together: a totals table split over two pages reads badly.
    needed = 6 + 7 * len(rows)
    if pdf.get_y() + needed > pdf.page_break_trigger:
        pdf.add_page()
    pdf.ln(4)
    label_x = pdf.l_margin + pdf.epw - 90
    for label, amount, bold in rows:
        pdf.set_x(label_x)
        pdf.set_font("Sans", "B" if bold else "", 10.5)
        pdf.cell(50, 7, label)
        pdf.cell(40, 7, format_amount(amount, currency), align="R", new_x=XPos.LMARGIN)
        pdf.ln(7)
