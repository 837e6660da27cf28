"""Subscriptions as Stripe runs them: started by a paid subscription-mode Checkout Session, billed
each period by an invoice that ``invoice_lifecycle`` moves, renewed or ended when the sandbox
clock passes the period's end.

::

    session paid ──► incomplete ──first invoice paid──► active ◄──renewal paid──┐
                                                          │  └──renewal fails──► past_due
                      cancel_at_period_end + period end ──┤
                      DELETE /v1/subscriptions/{id} ──────┴──► canceled

Every function here changes the state without awaiting, and returns the ``(event type,
snapshot)`` pairs Stripe sends for what it did, in Stripe's order.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field

from stripe.params import SubscriptionCancelParams, SubscriptionListParams, SubscriptionUpdateParams

from stripe_sandbox import invoice_lifecycle, objects, payments
from stripe_sandbox.cards import charge_succeeds
from stripe_sandbox.errors import invalid_request, resource_missing
from stripe_sandbox.forms import (
    Params,
    page_after,
    read_bool,
    read_int,
    read_metadata,
    read_str,
    reject_unknown,
)
from stripe_sandbox.objects import Obj, new_id
from stripe_sandbox.state import SandboxState
from stripe_sandbox.subscription_objects import period_end, subscription, subscription_item

__all__ = [
    "Account",
    "Advance",
    "advance_clock",
    "cancel_subscription",
    "list_subscriptions",
    "retrieve_subscription",
    "set_cancel_at_period_end",
    "start_subscription",
    "update_subscription",
]

Snapshots = list[tuple[str, Obj]]
_LIVE = ("active", "past_due", "trialing")
_LIST_STATUSES = (
    "active",
    "all",
    "canceled",
    "ended",
    "incomplete",
    "incomplete_expired",
    "past_due",
    "paused",
    "trialing",
    "unpaid",
)


@dataclass(frozen=True)
class Account:
    """Who bills: what invoices print and where their hosted pages live."""

    public_url: str
    country: str
    name: str


@dataclass
class Advance:
    """What moving the clock did; ``steps`` are the events, each group at its own time."""

    now: int
    renewed: list[str] = field(default_factory=list)
    ended: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)
    steps: list[tuple[int, Snapshots]] = field(default_factory=list)


def retrieve_subscription(state: SandboxState, subscription_id: str) -> Obj:
    found = state.subscriptions.get(subscription_id)
    if found is None:
        raise resource_missing("subscription", subscription_id)
    return found


def start_subscription(
    state: SandboxState,
    *,
    session: Obj,
    customer: Obj,
    card_number: str,
    now: int,
    account: Account,
) -> Snapshots:
    """The subscription a paid session makes, with its first invoice paid by ``card_number``."""
    subscription_id = new_id("sub_", 24)
    items = [
        subscription_item(
            subscription_id=subscription_id,
            line_item=line,
            created=now,
            end=period_end(now, line["price"]["recurring"], 1),
        )
        for line in state.checkout_line_items[session["id"]]
    ]
    invoice_id = new_id("in_")
    made = subscription(
        subscription_id=subscription_id,
        customer_id=customer["id"],
        currency=session["currency"],
        items=items,
        metadata=dict(state.checkout_subscription_data[session["id"]]["metadata"]),
        created=now,
        latest_invoice=invoice_id,
    )
    made["description"] = state.checkout_subscription_data[session["id"]]["description"]
    state.subscriptions[subscription_id] = made
    state.customer_cards[customer["id"]] = card_number
    events: Snapshots = [("customer.subscription.created", copy.deepcopy(made))]
    invoice_events, _ = _bill(
        state, made, reason="subscription_create", at=now, account=account, invoice_id=invoice_id
    )
    made["status"] = "active"
    return [*events, *invoice_events, ("customer.subscription.updated", copy.deepcopy(made))]


def _bill(
    state: SandboxState,
    sub: Obj,
    *,
    reason: str,
    at: int,
    account: Account,
    invoice_id: str | None = None,
) -> tuple[Snapshots, bool]:
    """The period's invoice, created, finalized and charged to the customer's card."""
    customer = state.customers[sub["customer"]]
    lines = [_invoice_item(state, item) for item in sub["items"]["data"]]
    draft = objects.invoice(
        created=at,
        customer_obj=customer,
        currency=sub["currency"],
        items=lines,
        description=None,
        metadata={},
        account_country=account.country,
        account_name=account.name,
        invoice_id=invoice_id,
    )
    draft.update(
        billing_reason=reason,
        auto_advance=True,
        parent={
            "type": "subscription_details",
            "quote_details": None,
            "subscription_details": {
                "metadata": dict(sub["metadata"]),
                "subscription": sub["id"],
                "subscription_proration_date": None,
            },
        },
    )
    for line, item in zip(draft["lines"]["data"], sub["items"]["data"], strict=True):
        line["period"] = {"start": item["current_period_start"], "end": item["current_period_end"]}
        line["subscription"] = sub["id"]
        line["parent"] = {
            "type": "subscription_item_details",
            "invoice_item_details": None,
            "subscription_item_details": {
                "invoice_item": None,
                "proration": False,
                "proration_details": {"credited_items": None},
                "subscription": sub["id"],
                "subscription_item": item["id"],
            },
        }
    finalized = invoice_lifecycle.finalize_numbered(
        draft, customer, at=at, public_url=account.public_url
    )
    paid = charge_succeeds(state.customer_cards.get(customer["id"], ""))
    if paid:
        charged = invoice_lifecycle.pay(finalized.invoice, at=at)
        intent = objects.payment_intent(
            created=at,
            amount=draft["amount_due"],
            currency=draft["currency"],
            customer_id=customer["id"],
            metadata={},
        )
        state.payment_intents[intent["id"]] = intent
        payments.charge_for_intent(state, intent, now=at)
    else:
        charged = invoice_lifecycle.fail_payment(finalized.invoice, at=at)
    state.invoices[draft["id"]] = charged.invoice
    sub["latest_invoice"] = draft["id"]
    return [("invoice.created", draft), *finalized.snapshots(), *charged.snapshots()], paid


def _invoice_item(state: SandboxState, item: Obj) -> Obj:
    """What ``objects.invoice_line`` reads, for one subscription item."""
    price = item["price"]
    amount = price["unit_amount"] * item["quantity"]
    name = state.product_names.get(price["product"], price["product"])
    every = price["recurring"]["interval"]
    if price["recurring"]["interval_count"] > 1:
        every = f"{price['recurring']['interval_count']} {every}s"
    return {
        "amount_total": amount,
        "amount_subtotal": amount,
        "currency": price["currency"],
        "description": f"{item['quantity']} \N{MULTIPLICATION SIGN} {name} "
        f"(at {price['unit_amount'] / 100:.2f} {price['currency'].upper()} / {every})",
        "quantity": item["quantity"],
        "price": price,
    }


def _renew(state: SandboxState, sub: Obj, *, at: int, account: Account) -> tuple[Snapshots, bool]:
    """The next period and its invoice; past_due when the card fails, active when it pays."""
    for item in sub["items"]["data"]:
        recurring = item["price"]["recurring"]
        periods = 1
        while period_end(sub["billing_cycle_anchor"], recurring, periods) <= at:
            periods += 1
        item["current_period_start"] = item["current_period_end"]
        item["current_period_end"] = period_end(sub["billing_cycle_anchor"], recurring, periods)
    events, paid = _bill(state, sub, reason="subscription_cycle", at=at, account=account)
    sub["status"] = "active" if paid else "past_due"
    return [*events, ("customer.subscription.updated", copy.deepcopy(sub))], paid


def _end(sub: Obj, *, at: int) -> Snapshots:
    sub.update(status="canceled", ended_at=at)
    return [("customer.subscription.deleted", copy.deepcopy(sub))]


def _period_end(sub: Obj) -> int:
    ends: list[int] = [item["current_period_end"] for item in sub["items"]["data"]]
    return min(ends)


def advance_clock(state: SandboxState, seconds: int, *, account: Account) -> Advance:
    """Move the clock; every period that ends on the way renews or ends, oldest end first, each
    at its own end time (so a far jump renews repeatedly)."""
    state.clock_offset += seconds
    result = Advance(now=state.now())
    while True:
        due = [
            sub
            for sub in state.subscriptions.values()
            if sub["status"] in _LIVE and _period_end(sub) <= result.now
        ]
        if not due:
            return result
        sub = min(due, key=_period_end)
        at = _period_end(sub)
        if sub["cancel_at_period_end"]:
            result.steps.append((at, _end(sub, at=at)))
            result.ended.append(sub["id"])
            continue
        events, paid = _renew(state, sub, at=at, account=account)
        result.steps.append((at, events))
        bucket = result.renewed if paid else result.failed
        if sub["id"] not in bucket:
            bucket.append(sub["id"])


def set_cancel_at_period_end(sub: Obj, cancel: bool, *, now: int) -> Snapshots:
    """Cancel at the period's end, or resume; 400 once the subscription is canceled."""
    if sub["status"] == "canceled":
        raise invalid_request(
            "A canceled subscription can only update its cancellation_details and metadata.",
            param="cancel_at_period_end",
        )
    sub.update(
        cancel_at_period_end=cancel,
        cancel_at=_period_end(sub) if cancel else None,
        canceled_at=now if cancel else None,
        cancellation_details={
            "comment": None,
            "feedback": None,
            "reason": "cancellation_requested" if cancel else None,
        },
    )
    return [("customer.subscription.updated", copy.deepcopy(sub))]


def update_subscription(
    state: SandboxState, subscription_id: str, params: Params, *, now: int
) -> tuple[Obj, Snapshots]:
    reject_unknown(params, SubscriptionUpdateParams)
    for name in params:
        if name not in ("cancel_at_period_end", "metadata"):
            raise invalid_request(
                f"The sandbox supports only cancel_at_period_end and metadata, not {name}.",
                param=name,
            )
    sub = retrieve_subscription(state, subscription_id)
    cancel = read_bool(params, "cancel_at_period_end")
    metadata = read_metadata(params) if "metadata" in params else None
    events: Snapshots = []
    if cancel is not None:
        events = set_cancel_at_period_end(sub, cancel, now=now)
    if metadata is not None:
        sub["metadata"] = {**sub["metadata"], **metadata}
        events = [("customer.subscription.updated", copy.deepcopy(sub))]
    return sub, events


def cancel_subscription(
    state: SandboxState, subscription_id: str, params: Params, *, now: int
) -> tuple[Obj, Snapshots]:
    """DELETE: canceled now; 400 if it already is."""
    reject_unknown(params, SubscriptionCancelParams)
    sub = retrieve_subscription(state, subscription_id)
    if sub["status"] == "canceled":
        raise invalid_request(
            f"The subscription {subscription_id} has already been canceled.",
            code="subscription_canceled",
        )
    sub.update(
        canceled_at=now,
        cancellation_details={
            "comment": None,
            "feedback": None,
            "reason": "cancellation_requested",
        },
    )
    return sub, _end(sub, at=now)


def list_subscriptions(state: SandboxState, params: Params) -> tuple[list[Obj], bool]:
    """Newest first; by default those not canceled, as Stripe lists them."""
    reject_unknown(params, SubscriptionListParams)
    customer = read_str(params, "customer")
    status = read_str(params, "status")
    if status is not None and status not in _LIST_STATUSES:
        raise invalid_request(
            f"Invalid status: must be one of {', '.join(_LIST_STATUSES)}", param="status"
        )
    limit = read_int(params, "limit", minimum=1, maximum=100) or 10

    def wanted(sub: Obj) -> bool:
        if status == "all":
            return True
        if status is None:
            return sub["status"] not in ("canceled", "incomplete_expired")
        if status == "ended":
            return sub["status"] in ("canceled", "incomplete_expired")
        return bool(sub["status"] == status)

    found = [
        sub
        for sub in reversed(state.subscriptions.values())
        if (customer is None or sub["customer"] == customer) and wanted(sub)
    ]
    return page_after(found, params, kind="subscription", limit=limit)
