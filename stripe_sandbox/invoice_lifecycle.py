"""An invoice's life as Stripe moves it, in one place: draft → open → paid | void |
uncollectible, and a failed payment attempt that leaves it open.

::

    draft ──finalize──► open ──pay──────────────► paid
                         │ ├──fail_payment──► open (attempted)
                         │ ├──void──────────► void
                         │ └──mark_uncollectible► uncollectible ──pay / void──► paid / void

Each step is a pure function: it takes an invoice (``objects.invoice`` makes the draft) and
returns a :class:`Step`, a new invoice and the event types Stripe emits for the step; the input is
never changed. The sandbox, the test event builders and the Postman builder all move invoices
with these, so the three cannot drift apart. ``at`` is the step's time (unix seconds).
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Any

from stripe_sandbox.errors import invalid_request
from stripe_sandbox.objects import Obj

__all__ = [
    "Step",
    "fail_payment",
    "finalize",
    "finalize_numbered",
    "mark_uncollectible",
    "pay",
    "void",
]


@dataclass(frozen=True)
class Step:
    invoice: Obj
    events: tuple[str, ...]
    """The event types Stripe sends for this step, in order, each with this invoice."""

    def snapshots(self) -> list[tuple[str, Obj]]:
        """``(event type, invoice snapshot)`` for each event, as ``emit_events`` takes them."""
        return [(event_type, copy.deepcopy(self.invoice)) for event_type in self.events]


def finalize(
    invoice: Obj,
    *,
    at: Any,
    number: str,
    hosted_invoice_url: str,
    invoice_pdf: str | None = None,
) -> Step:
    """A draft gets its number and its hosted page and can no longer change: it is open."""
    _require(invoice, ("draft",), "finalize")
    opened = copy.deepcopy(invoice)
    opened.update(
        status="open",
        number=number,
        effective_at=at,
        ending_balance=0,
        hosted_invoice_url=hosted_invoice_url,
        invoice_pdf=invoice_pdf,
        webhooks_delivered_at=at,
    )
    opened["status_transitions"]["finalized_at"] = at
    return Step(opened, ("invoice.finalized",))


def finalize_numbered(invoice: Obj, customer: Obj, *, at: Any, public_url: str) -> Step:
    """:func:`finalize` with the customer's next invoice number (``PREFIX-0001``, ...) and the
    sandbox's hosted page."""
    number = f"{customer['invoice_prefix']}-{customer['next_invoice_sequence']:04d}"
    customer["next_invoice_sequence"] += 1
    return finalize(
        invoice,
        at=at,
        number=number,
        hosted_invoice_url=f"{public_url}/sandbox/invoices/{invoice['id']}",
    )


def pay(invoice: Obj, *, at: Any) -> Step:
    """The amount due is paid in full (an invoice marked uncollectible can still be paid)."""
    _require(invoice, ("open", "uncollectible"), "pay")
    paid = copy.deepcopy(invoice)
    paid.update(
        status="paid",
        amount_paid=invoice["amount_due"],
        amount_remaining=0,
        attempted=True,
        attempt_count=invoice["attempt_count"] + 1,
    )
    paid["status_transitions"]["paid_at"] = at
    return Step(paid, ("invoice.paid", "invoice.payment_succeeded"))


def fail_payment(invoice: Obj, *, at: Any) -> Step:
    """A payment attempt fails: the invoice stays open, with the attempt counted."""
    _require(invoice, ("open",), "attempt payment on")
    attempted = copy.deepcopy(invoice)
    attempted.update(
        attempted=True, attempt_count=invoice["attempt_count"] + 1, next_payment_attempt=None
    )
    return Step(attempted, ("invoice.payment_failed",))


def void(invoice: Obj, *, at: Any) -> Step:
    """Cancelled: nothing is owed any more, the number stays taken."""
    _require(invoice, ("open", "uncollectible"), "void")
    voided = copy.deepcopy(invoice)
    voided.update(status="void", amount_remaining=0)
    voided["status_transitions"]["voided_at"] = at
    return Step(voided, ("invoice.voided",))


def mark_uncollectible(invoice: Obj, *, at: Any) -> Step:
    _require(invoice, ("open",), "mark uncollectible")
    written_off = copy.deepcopy(invoice)
    written_off["status"] = "uncollectible"
    written_off["status_transitions"]["marked_uncollectible_at"] = at
    return Step(written_off, ("invoice.marked_uncollectible",))


def _require(invoice: Obj, statuses: tuple[str, ...], action: str) -> None:
    if invoice["status"] not in statuses:
        raise invalid_request(
            f"You can only {action} an invoice whose status is "
            f"{' or '.join(statuses)}; this one is {invoice['status']}.",
            code="invoice_unexpected_status"
            if invoice["status"] != "paid"
            else "invoice_already_paid",
        )
