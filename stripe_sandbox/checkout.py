"""Embedded Checkout Sessions: create, retrieve, expire, and complete with a test card."""

from __future__ import annotations

import copy
import re
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from stripe.params.checkout import SessionCreateParams

from stripe_sandbox import objects, payments, subscriptions
from stripe_sandbox.cards import check_card
from stripe_sandbox.customers import retrieve_customer
from stripe_sandbox.errors import invalid_request, resource_missing
from stripe_sandbox.forms import (
    Params,
    read_bool,
    read_int,
    read_metadata,
    read_str,
    reject_unknown,
)
from stripe_sandbox.invoices import invoice_checkout_session
from stripe_sandbox.objects import Obj
from stripe_sandbox.state import SandboxState
from stripe_sandbox.subscription_objects import INTERVALS, recurring

__all__ = [
    "Card",
    "Completion",
    "complete_checkout_session",
    "create_checkout_session",
    "expire_checkout_session",
    "expire_due_sessions",
    "redirect_url",
    "retrieve_checkout_session",
]

SESSION_ID_PLACEHOLDER = "{CHECKOUT_SESSION_ID}"
_DAY = 24 * 3600
_MAX_UNIT_AMOUNT = 99_999_999


@dataclass(frozen=True)
class Card:
    number: str
    exp_month: int
    exp_year: int
    cvc: str


@dataclass(frozen=True)
class Completion:
    session: Obj
    events: list[tuple[str, Obj]]


def create_checkout_session(state: SandboxState, params: Params, *, now: int) -> Obj:
    reject_unknown(params, SessionCreateParams)
    ui_mode = read_str(params, "ui_mode")
    if ui_mode != "embedded_page":
        raise invalid_request(
            "The sandbox supports only embedded Checkout: pass ui_mode=embedded_page.",
            param="ui_mode",
        )
    mode = read_str(params, "mode", required=True)
    if mode not in ("payment", "subscription"):
        raise invalid_request(
            f"The sandbox supports only mode=payment and mode=subscription, not {mode}.",
            param="mode",
        )
    if mode == "subscription" and "invoice_creation" in params:
        raise invalid_request(
            "`invoice_creation` can only be used in `payment` mode.", param="invoice_creation"
        )
    if mode == "payment" and "subscription_data" in params:
        raise invalid_request(
            "`subscription_data` can only be used in `subscription` mode.",
            param="subscription_data",
        )
    if "success_url" in params or "cancel_url" in params:
        param = "success_url" if "success_url" in params else "cancel_url"
        raise invalid_request(
            f"`{param}` cannot be used with ui_mode=embedded_page; use return_url.", param=param
        )
    redirect = read_str(params, "redirect_on_completion") or "always"
    if redirect not in ("always", "if_required", "never"):
        raise invalid_request(
            f"Invalid redirect_on_completion: {redirect}", param="redirect_on_completion"
        )
    return_url = read_str(params, "return_url", required=redirect != "never")
    if return_url is not None:
        _check_url(return_url, "return_url")
    customer_id = read_str(params, "customer")
    customer_email = read_str(params, "customer_email")
    if customer_id is not None and customer_email is not None:
        raise invalid_request(
            "You may only specify one of these parameters: customer, customer_email.",
            param="customer_email",
        )
    if customer_id is not None and customer_id not in state.customers:
        raise resource_missing("customer", customer_id, param="customer")
    items = _line_items(params, now=now)
    _check_prices(items, mode)
    currencies = {item["currency"] for item in items}
    if len(currencies) > 1:
        raise invalid_request("All line items must use the same currency.", param="line_items")
    expires_at = read_int(params, "expires_at") or now + _DAY
    if not now + 1800 <= expires_at <= now + _DAY:
        raise invalid_request(
            "expires_at must be between 30 minutes and 24 hours from now.", param="expires_at"
        )
    client_reference_id = read_str(params, "client_reference_id")
    if client_reference_id is not None and len(client_reference_id) > 200:
        raise invalid_request(
            "client_reference_id is at most 200 characters.", param="client_reference_id"
        )
    session = objects.checkout_session(
        created=now,
        expires_at=expires_at,
        currency=currencies.pop(),
        amount_total=sum(item["amount_total"] for item in items),
        customer_id=customer_id,
        customer_email=customer_email,
        client_reference_id=client_reference_id,
        return_url=return_url,
        redirect_on_completion=redirect,
        metadata=read_metadata(params),
        invoice_creation=_invoice_creation(params) if mode == "payment" else None,
        locale=read_str(params, "locale"),
        mode=mode,
    )
    state.checkout_sessions[session["id"]] = session
    state.checkout_line_items[session["id"]] = items
    for item in items:
        state.product_names[item["price"]["product"]] = item["description"]
    if mode == "subscription":
        state.checkout_subscription_data[session["id"]] = _subscription_data(params)
    return session


def retrieve_checkout_session(state: SandboxState, session_id: str) -> Obj:
    session = state.checkout_sessions.get(session_id)
    if session is None:
        raise resource_missing("checkout.session", session_id)
    return session


def expire_checkout_session(state: SandboxState, session_id: str) -> Obj:
    session = retrieve_checkout_session(state, session_id)
    if session["status"] != "open":
        raise invalid_request(
            'Only Checkout Sessions with a status in ["open"] can be expired. This Checkout '
            f'Session has a status of "{session["status"]}".'
        )
    session["status"] = "expired"
    return session


def expire_due_sessions(state: SandboxState, *, now: int) -> list[tuple[int, Obj]]:
    """Open sessions whose ``expires_at`` has passed expire, as Stripe expires them on its own:
    ``(expires_at, snapshot)`` for each, to send ``checkout.session.expired`` at that time."""
    expired = []
    for session in state.checkout_sessions.values():
        if session["status"] == "open" and session["expires_at"] <= now:
            session["status"] = "expired"
            expired.append((session["expires_at"], copy.deepcopy(session)))
    return expired


def complete_checkout_session(
    state: SandboxState,
    session_id: str,
    card: Card,
    *,
    now: int,
    public_url: str,
    account_country: str,
    account_name: str,
) -> Completion:
    """Pay the session with ``card``; a declined card raises card_error and changes nothing."""
    session = retrieve_checkout_session(state, session_id)
    if session["status"] != "open":
        raise invalid_request(
            f"This Checkout Session is {session['status']} and can no longer be paid.",
            code="checkout_session_"
            + ("expired" if session["status"] == "expired" else "completed"),
        )
    if now > session["expires_at"]:
        raise invalid_request("This Checkout Session has expired.", code="checkout_session_expired")
    check_card(card.number, card.exp_month, card.exp_year, card.cvc)
    if session["mode"] == "subscription":
        return _complete_subscription(
            state,
            session,
            card,
            now=now,
            account=subscriptions.Account(public_url, account_country, account_name),
        )

    customer = _session_customer(state, session, now=now)
    intent = objects.payment_intent(
        created=now,
        amount=session["amount_total"],
        currency=session["currency"],
        customer_id=customer["id"] if customer else None,
        metadata={},
    )
    state.payment_intents[intent["id"]] = intent
    payments.charge_for_intent(state, intent, now=now)  # issue 10: refunds and disputes need it
    session.update(
        status="complete",
        payment_status="paid",
        payment_intent=intent["id"],
        customer_details=_customer_details(customer, session),
    )
    invoice_events: list[tuple[str, Obj]] = []
    if (session["invoice_creation"] or {}).get("enabled") and customer is not None:
        invoice_events = invoice_checkout_session(
            state,
            session=session,
            customer=customer,
            now=now,
            public_url=public_url,
            account_country=account_country,
            account_name=account_name,
        )
        session["invoice"] = invoice_events[0][1]["id"]
    events = [("checkout.session.completed", copy.deepcopy(session)), *invoice_events]
    return Completion(session=session, events=events)


def _complete_subscription(
    state: SandboxState, session: Obj, card: Card, *, now: int, account: subscriptions.Account
) -> Completion:
    """Stripe's order: the subscription, its first invoice's steps, the subscription active,
    then the session completed."""
    customer = _session_customer(state, session, now=now)
    assert customer is not None  # subscription mode always has one
    events = subscriptions.start_subscription(
        state,
        session=session,
        customer=customer,
        card_number=card.number,
        now=now,
        account=account,
    )
    sub = events[0][1]
    session.update(
        status="complete",
        payment_status="paid",
        subscription=sub["id"],
        invoice=state.subscriptions[sub["id"]]["latest_invoice"],
        customer_details=_customer_details(customer, session),
    )
    events.append(("checkout.session.completed", copy.deepcopy(session)))
    return Completion(session=session, events=events)


def _customer_details(customer: Obj | None, session: Obj) -> Obj:
    return {
        "address": None,
        "business_name": None,
        "email": (customer or {}).get("email") or session["customer_email"],
        "individual_name": None,
        "name": (customer or {}).get("name"),
        "phone": None,
        "tax_exempt": "none",
        "tax_ids": [],
    }


def redirect_url(session: Obj) -> str | None:
    """The return_url with the session id filled in, as Stripe.js navigates to it."""
    return_url: str | None = session["return_url"]
    if return_url is None or session["redirect_on_completion"] == "never":
        return None
    return return_url.replace(SESSION_ID_PLACEHOLDER, session["id"])


def _session_customer(state: SandboxState, session: Obj, *, now: int) -> Obj | None:
    """The session's customer; a guest with an email gets one when an invoice needs it."""
    if session["customer"] is not None:
        return retrieve_customer(state, session["customer"])
    if session["mode"] == "payment" and not (session["invoice_creation"] or {}).get("enabled"):
        return None
    customer = objects.customer(
        created=now,
        email=session["customer_email"],
        name=None,
        description=None,
        phone=None,
        metadata={},
    )
    state.customers[customer["id"]] = customer
    session["customer"] = customer["id"]
    return customer


def _check_url(url: str, param: str) -> None:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise invalid_request(f"Not a valid URL: {url}", param=param, code="url_invalid")


def _line_items(params: Params, *, now: int) -> list[Obj]:
    raw = params.get("line_items")
    if raw is None:
        raise invalid_request(
            "Missing required param: line_items.", param="line_items", code="parameter_missing"
        )
    if not isinstance(raw, list) or not raw or len(raw) > 100:
        raise invalid_request("line_items must list 1 to 100 items.", param="line_items")
    return [_line_item(entry, f"line_items[{index}]", now=now) for index, entry in enumerate(raw)]


def _line_item(entry: Any, label: str, *, now: int) -> Obj:
    if not isinstance(entry, dict):
        raise invalid_request(f"Invalid object: {label}", param=label)
    price = read_str(entry, "price", param=f"{label}[price]")
    if price is not None:
        raise resource_missing("price", price, param=f"{label}[price]")
    price_data = entry.get("price_data")
    if not isinstance(price_data, dict):
        raise invalid_request(
            f"Missing required param: {label}[price_data].",
            param=f"{label}[price_data]",
            code="parameter_missing",
        )
    prefix = f"{label}[price_data]"
    currency = read_str(price_data, "currency", param=f"{prefix}[currency]", required=True)
    assert currency is not None
    if not re.fullmatch(r"[a-zA-Z]{3}", currency):
        raise invalid_request(f"Invalid currency: {currency}", param=f"{prefix}[currency]")
    unit_amount = read_int(
        price_data,
        "unit_amount",
        param=f"{prefix}[unit_amount]",
        required=True,
        minimum=0,
        maximum=_MAX_UNIT_AMOUNT,
    )
    assert unit_amount is not None
    product = read_str(price_data, "product", param=f"{prefix}[product]")
    if product is not None:
        raise resource_missing("product", product, param=f"{prefix}[product]")
    product_data = price_data.get("product_data")
    if not isinstance(product_data, dict):
        raise invalid_request(
            f"Missing required param: {prefix}[product_data].",
            param=f"{prefix}[product_data]",
            code="parameter_missing",
        )
    name = read_str(product_data, "name", param=f"{prefix}[product_data][name]", required=True)
    assert name is not None
    quantity = read_int(
        entry, "quantity", param=f"{label}[quantity]", required=True, minimum=1, maximum=999_999
    )
    assert quantity is not None
    return objects.checkout_line_item(
        recurring=_recurring(price_data, f"{prefix}[recurring]"),
        currency=currency.lower(),
        unit_amount=unit_amount,
        quantity=quantity,
        name=name,
        description=read_str(
            product_data, "description", param=f"{prefix}[product_data][description]"
        ),
        created=now,
    )


def _recurring(price_data: Params, label: str) -> Obj | None:
    raw = price_data.get("recurring")
    if raw is None:
        return None
    if not isinstance(raw, dict):
        raise invalid_request(f"Invalid object: {label}", param=label)
    interval = read_str(raw, "interval", param=f"{label}[interval]", required=True)
    if interval not in INTERVALS:
        raise invalid_request(
            f"Invalid {label}[interval]: must be one of {', '.join(INTERVALS)}",
            param=f"{label}[interval]",
        )
    count = read_int(raw, "interval_count", param=f"{label}[interval_count]", minimum=1) or 1
    # Stripe's limit: at most one year between billings.
    if count * {"day": 1, "week": 7, "month": 31, "year": 366}[interval] > 366:
        raise invalid_request(
            "The maximum billing period is one year.", param=f"{label}[interval_count]"
        )
    return recurring(interval, count)


def _check_prices(items: list[Obj], mode: str) -> None:
    recurring_prices = [item["price"]["recurring"] for item in items]
    if mode == "payment" and any(recurring_prices):
        raise invalid_request(
            "You specified `payment` mode but passed a recurring price. Either switch to "
            "`subscription` mode or use only one-time prices.",
            param="mode",
        )
    if mode == "subscription":
        if not all(recurring_prices):
            raise invalid_request(
                "The sandbox needs every line item of a `subscription` mode session to have a "
                "recurring price (price_data[recurring]).",
                param="line_items",
            )
        periods = {(r["interval"], r["interval_count"]) for r in recurring_prices}
        if len(periods) > 1:
            raise invalid_request(
                "Checkout does not support multiple prices with different billing intervals.",
                param="line_items",
            )


def _subscription_data(params: Params) -> Obj:
    raw = params.get("subscription_data")
    raw = raw if isinstance(raw, dict) else {}
    for name in raw:
        if name not in ("metadata", "description"):
            raise invalid_request(
                f"The sandbox supports only subscription_data[metadata] and [description], "
                f"not {name}.",
                param=f"subscription_data[{name}]",
            )
    return {
        "metadata": read_metadata(raw, param="subscription_data[metadata]"),
        "description": read_str(raw, "description", param="subscription_data[description]"),
    }


def _invoice_creation(params: Params) -> Obj:
    raw = params.get("invoice_creation")
    raw = raw if isinstance(raw, dict) else {}
    enabled = bool(read_bool(raw, "enabled", param="invoice_creation[enabled]"))
    data = raw.get("invoice_data")
    data = data if isinstance(data, dict) else {}
    return objects.invoice_creation(
        enabled=enabled,
        description=read_str(
            data, "description", param="invoice_creation[invoice_data][description]"
        ),
        footer=read_str(data, "footer", param="invoice_creation[invoice_data][footer]"),
        metadata=read_metadata(data, param="invoice_creation[invoice_data][metadata]"),
    )
