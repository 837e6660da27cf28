"""Invoices: the one a paid Checkout Session creates, moved draft → open → paid by
``invoice_lifecycle``, and GET /v1/invoices[/{id}]."""

from __future__ import annotations

from stripe.params import InvoiceListParams

from stripe_sandbox import invoice_lifecycle, objects
from stripe_sandbox.errors import resource_missing
from stripe_sandbox.forms import Params, page_after, read_int, read_str, reject_unknown
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
    finalized = invoice_lifecycle.finalize_numbered(
        invoice, customer, at=now, public_url=public_url
    )
    paid = invoice_lifecycle.pay(finalized.invoice, at=now)
    state.invoices[invoice["id"]] = paid.invoice
    return [("invoice.created", invoice), *finalized.snapshots(), *paid.snapshots()]


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
    subscription = read_str(params, "subscription")
    limit = read_int(params, "limit", minimum=1, maximum=100) or 10
    found = [
        invoice
        for invoice in reversed(state.invoices.values())
        if (customer is None or invoice["customer"] == customer)
        and (status is None or invoice["status"] == status)
        and (subscription is None or _subscription_of(invoice) == subscription)
    ]
    return page_after(found, params, kind="invoice", limit=limit)


def _subscription_of(invoice: Obj) -> str | None:
    details = (invoice["parent"] or {}).get("subscription_details") or {}
    subscription: str | None = details.get("subscription")
    return subscription
