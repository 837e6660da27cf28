"""Write a sample invoice PDF, to look at the layout without running the stack.

.venv/bin/python scripts/sample_invoice_pdf.py sample.pdf
pdftoppm -png -r 60 -f 1 -l 1 sample.pdf docs/images/invoice-page   # docs/images/invoice-page-1.png
"""

from __future__ import annotations

import sys
from pathlib import Path

from facturation_service.invoice_documents import Seller
from facturation_service.invoice_pdf import render_invoice_pdf
from stripe_sandbox import objects

ISSUED = 1_764_547_200  # 1 Dec 2025 00:00 UTC
ITEMS = [
    ("Pro plan (monthly)", 1900, 1),
    ("Onboarding workshop with Zoë", 45000, 1),
    ("株式会社 translation of the user guide", 12000, 2),
    ("Sticker pack", 250, 4),
]


def sample_invoice() -> dict[str, object]:
    buyer = objects.customer(
        created=ISSUED,
        email="lukasz@example.com",
        name="Łukasz Żółć",
        description=None,
        phone=None,
        metadata={},
    )
    items = [
        objects.checkout_line_item(
            currency="eur", unit_amount=unit, quantity=qty, name=name, description=None, created=0
        )
        for name, unit, qty in ITEMS
    ]
    invoice = objects.invoice(
        invoice_id="in_sample",
        created=ISSUED,
        customer_obj=buyer,
        currency="eur",
        items=items,
        description=None,
        metadata={},
        account_country="FR",
        account_name="Facturation Demo",
    )
    subtotal = int(invoice["subtotal"])
    tax = subtotal // 5
    invoice.update(
        number="F8C2A1D0-0042",
        status="paid",
        total=subtotal + tax,
        amount_paid=subtotal + tax,
        amount_remaining=0,
        total_taxes=[{"amount": tax, "tax_behavior": "exclusive"}],
    )
    invoice["status_transitions"].update(finalized_at=ISSUED, paid_at=ISSUED + 120)
    subscription_line = invoice["lines"]["data"][0]
    subscription_line["parent"] = {"type": "subscription_item_details"}
    subscription_line["period"] = {"start": ISSUED, "end": ISSUED + 31 * 86400}
    return invoice


def main() -> None:
    seller = Seller(
        name="Facturation Demo SAS",
        address=("1 rue de la Paix", "75002 Paris", "France"),
        tax_id="FR40123456789",
    )
    Path(sys.argv[1]).write_bytes(render_invoice_pdf(sample_invoice(), seller))


if __name__ == "__main__":
    main()
