"""The invoice PDF read back as text: what a person would look for on the page is there."""

from __future__ import annotations

import io
from typing import Any

import pytest
from pypdf import PdfReader

from facturation_service.invoice_documents import Seller, render_document
from facturation_service.invoice_pdf import format_amount, render_invoice_pdf
from tests.support import stripe_events

SELLER = Seller(
    name="Facturation Demo SAS",
    address=("1 rue de la Paix", "75002 Paris, France"),
    tax_id="FR40123456789",
)
PAID_AT = 1_764_504_000  # 30 Nov 2025 12:00 UTC


def paid_invoice(**changes: Any) -> dict[str, Any]:
    lines = changes.pop("lines", None)
    currency = changes.pop("currency", "eur")
    invoice = stripe_events.invoice("paid", lines=lines, currency=currency, created=PAID_AT - 3600)
    invoice["status_transitions"].update(finalized_at=PAID_AT - 3000, paid_at=PAID_AT)
    invoice.update(customer_name="Ada Lovelace", customer_email="ada@example.com")
    invoice.update(changes)
    return invoice


def pages_text(document: bytes) -> list[str]:
    return [page.extract_text() for page in PdfReader(io.BytesIO(document)).pages]


def test_a_paid_invoice_shows_seller_buyer_number_dates_lines_totals_and_the_paid_mark() -> None:
    invoice = paid_invoice(lines=[("Pro plan", 1500, 1), ("Sticker pack", 250, 2)])

    document = render_invoice_pdf(invoice, SELLER)

    assert document.startswith(b"%PDF-")
    (text,) = pages_text(document)
    for expected in (
        "Facturation Demo SAS",
        "1 rue de la Paix",
        "75002 Paris, France",
        "Tax ID: FR40123456789",
        "Ada Lovelace",
        "ada@example.com",
        f"Number: {invoice['number']}",
        "Issued: 30 Nov 2025",
        "Paid: 30 Nov 2025",
        "PAID",
        "Pro plan 1 €15.00 €15.00",
        "Sticker pack 2 €2.50 €5.00",
        "Subtotal €20.00",
        "Total €20.00",
        "Amount paid €20.00",
        "Amount remaining €0.00",
    ):
        assert expected in text, expected
    assert "VOID" not in text


def test_sixty_lines_span_several_pages_with_the_totals_on_the_last_only() -> None:
    invoice = paid_invoice(lines=[(f"Consulting day {day:02d}", 10_000, 1) for day in range(60)])

    pages = pages_text(render_invoice_pdf(invoice, SELLER))

    assert len(pages) >= 2
    everything = "\n".join(pages)
    for day in range(60):
        assert f"Consulting day {day:02d} 1 €100.00 €100.00" in everything
    assert "Total €6,000.00" in pages[-1]
    assert "Amount remaining €0.00" in pages[-1]
    assert all("Subtotal" not in page for page in pages[:-1])
    assert f"page {len(pages)}/{len(pages)}" in pages[-1]


def test_names_outside_latin_1_come_back_as_text_drawn_from_the_embedded_fonts() -> None:
    invoice = paid_invoice(
        customer_name="Łukasz Żółć",
        lines=[("Zoë's workshop", 5000, 1), ("株式会社 translation", 7000, 1)],
    )

    document = render_invoice_pdf(invoice, Seller(name="Société Générale d'Édition"))

    (text,) = pages_text(document)
    assert "Łukasz Żółć" in text
    assert "Zoë's workshop" in text
    assert "株式会社 translation" in text
    assert "Société Générale d'Édition" in text
    fonts = {
        str(font["/BaseFont"])
        for page in PdfReader(io.BytesIO(document)).pages
        for font in page["/Resources"]["/Font"].values()  # type: ignore[index]
    }
    assert any("NotoSans" in font for font in fonts)
    assert any("DroidSansFallback" in font for font in fonts)


def test_the_same_snapshot_always_renders_the_same_bytes() -> None:
    invoice = paid_invoice(customer_name="株式会社 Zoë")

    assert render_invoice_pdf(invoice, SELLER) == render_invoice_pdf(invoice, SELLER)


def test_a_void_invoice_is_marked_void_and_shows_what_was_left_to_pay() -> None:
    invoice = paid_invoice(status="void", amount_paid=0, amount_remaining=2000)
    invoice["status_transitions"].update(paid_at=None, voided_at=PAID_AT)

    (text,) = pages_text(render_invoice_pdf(invoice, SELLER))

    assert "VOID" in text
    assert "PAID" not in text
    assert "Voided: 30 Nov 2025" in text
    assert "Amount paid €0.00" in text
    assert "Amount remaining €20.00" in text


def test_tax_is_shown_when_present_and_a_subscription_line_shows_its_period() -> None:
    invoice = paid_invoice(lines=[("Pro plan (monthly)", 1000, 1)], subtotal=1000, total=1200)
    invoice["total_taxes"] = [{"amount": 200, "tax_behavior": "exclusive"}]
    line = invoice["lines"]["data"][0]
    line["period"] = {"start": 1_764_547_200, "end": 1_767_225_600}  # 1 Dec 2025 to 1 Jan 2026
    line["parent"] = {"type": "subscription_item_details"}

    (text,) = pages_text(render_invoice_pdf(invoice, SELLER))

    assert "Tax €2.00" in text
    assert "Total €12.00" in text
    assert "Period: 01 Dec 2025 to 01 Jan 2026" in text


def test_yen_has_no_decimals_on_the_page() -> None:
    invoice = paid_invoice(currency="jpy", lines=[("Tea ceremony", 1500, 2)])

    (text,) = pages_text(render_invoice_pdf(invoice, SELLER))

    assert "Tea ceremony 2 ¥1,500 ¥3,000" in text
    assert "Total ¥3,000" in text


@pytest.mark.parametrize(
    ("amount", "currency", "shown"),
    [
        (123456, "eur", "€1,234.56"),
        (99, "usd", "$0.99"),
        (1500, "jpy", "¥1,500"),
        (1500, "JPY", "¥1,500"),
        (2500, "krw", "2,500 KRW"),
        (1234, "kwd", "1.234 KWD"),
        (1050, "chf", "10.50 CHF"),
        (-500, "eur", "-€5.00"),
        (0, "usd", "$0.00"),
    ],
)
def test_amounts_are_written_in_their_currency_s_units(
    amount: int, currency: str, shown: str
) -> None:
    assert format_amount(amount, currency) == shown


def test_a_snapshot_without_a_number_has_no_document() -> None:
    draft = stripe_events.invoice("draft")

    with pytest.raises(ValueError, match="no number"):
        render_invoice_pdf(draft, SELLER)


def test_the_default_renderer_renders_with_the_pdf_library_it_imports() -> None:
    """``render_document`` imports fpdf2 when called (that serving does not load it is
    ``tests/unit/test_service_imports.py``)."""
    pdf = render_document(stripe_events.invoice("paid"), SELLER)

    assert pdf.startswith(b"%PDF-")
