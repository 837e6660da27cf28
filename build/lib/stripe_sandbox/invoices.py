"""Invoices: the one a paid Checkout Session creates, moved draft → open → paid as Stripe does,
and GET /v1/invoices[/{id}]."""

from __future__ import annotations

import copy

from stripe.params import InvoiceListParams

from stripe_sandbox import objects
from stripe_sandbox.errors import resource_missing
from stripe_sandbox.forms import Params, read_int, read_str, reject_unknown
from stripe_sandbox.objects import Obj
from stripe_sandbox.state import SandboxState

__all__ = ["invoice_checkout_session", "list_invoices", "retrieve_invoice"]


def invoice_checkout_session(
    state: SandboxState,
    *,
    session: Obj,
    customer: Obj,
    now: int,
    public_url: str,
    account_country: str,
    account_name: str,
) -> list[tuple[str, Obj]]:
    """Create, finalize and pay the session's invoice; the events with each step's snapshot."""
    invoice_data = (session["invoice_creation"] or {}).get("invoice_data") or {}
    invoice = objects.invoice(
        created=now,
        customer_obj=customer,
        currency=session["currency"],
        items=state.checkout_line_items[session["id"]],
        description=invoice_data.get("description"),
        metadata=dict(invoice_data.get("metadata") or {}),
        account_country=account_country,
        account_name=account_name,
    )
    state.invoices[invoice["id"]] = invoice
    snapshots = [("invoice.created", copy.deepcopy(invoice))]

    invoice["number"] = f"{customer['invoice_prefix']}-{customer['next_invoice_sequence']:04d}"
    customer["next_invoice_sequence"] += 1
    invoice.update(
        status="open",
        effective_at=now,
        ending_balance=0,
        hosted_invoice_url=f"{public_url}/sandbox/invoices/{invoice['id']}",
    )
    invoice["status_transitions"]["finalized_at"] = now
    snapshots.append(("invoice.finalized", copy.deepcopy(invoice)))

    invoice.update(
        status="paid",
        amount_paid=invoice["amount_due"],
        amount_remaining=0,
        attempted=True,
        attempt_count=1,
        webhooks_delivered_at=now,
    )
    invoice["status_transitions"]["paid_at"] = now
    paid = copy.deepcopy(invoice)
    snapshots += [("invoice.paid", paid), ("invoice.payment_succeeded", copy.deepcopy(paid))]
    return snapshots


def retrieve_invoice(state: SandboxState, invoice_id: str) -> Obj:
    invoice = state.invoices.get(invoice_id)
    if invoice is None:
        raise resource_missing("invoice", invoice_id)
    return invoice


def list_invoices(state: SandboxState, params: Params) -> tuple[list[Obj], bool]:
    """Newest first, with Stripe's cursor pagination."""
    reject_unknown(params, InvoiceListParams)
    customer = read_str(params, "customer")
    status = read_str(params, "status")
    limit = read_int(params, "limit", minimum=1, maximum=100) or 10
    found = [
        invoice
        for invoice in reversed(state.invoices.values())
        if (customer is None or invoice["customer"] == customer)
        and (status is None or invoice["status"] == status)
    ]
    starting_after = read_str(params, "starting_after")
    if starting_after is not None:
        ids = [invoice["id"] for invoice in found]
        if starting_after not in ids:
            raise resource_missing("invoice", starting_after, param="starting_after")
        found = found[ids.index(starting_after) + 1 :]
    return found[:limit], len(found) > limit
