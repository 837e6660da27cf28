"""Stripe events as Stripe sends them (API version 2026-10-28.endive), and a signer.

The objects come from the offline sandbox's builders (``stripe_sandbox.objects``), the one place
that knows Stripe's shapes, moved into the state each test needs. They carry every field Stripe
puts in a webhook, so the tests prove that the service accepts what it does not use. ``sign``
produces a real ``Stripe-Signature: t=...,v1=...`` header (HMAC-SHA256 over ``"{t}.{body}"``).
"""

from __future__ import annotations

import secrets
import time
import zlib
from typing import Any

from stripe_sandbox import invoice_lifecycle, objects, payments
from stripe_sandbox.objects import new_id
from stripe_sandbox.webhooks import delivery_headers, encode_event, signature_header

API_VERSION = objects.API_VERSION
WEBHOOK_SECRET = "whsec_test_" + "5f3c1e9a7b2d4c6e8f0a1b3c5d7e9f11"


def sign(body: bytes, secret: str = WEBHOOK_SECRET, *, timestamp: int | None = None) -> str:
    """The ``Stripe-Signature`` header value Stripe would send for ``body``."""
    return signature_header(body, [secret], int(time.time()) if timestamp is None else timestamp)


def encode(event: dict[str, Any]) -> bytes:
    """The body as Stripe formats it (pretty-printed JSON)."""
    return encode_event(event)


def signed_request(
    event: dict[str, Any], secret: str = WEBHOOK_SECRET, *, timestamp: int | None = None
) -> tuple[bytes, dict[str, str]]:
    body = encode(event)
    stamp = int(time.time()) if timestamp is None else timestamp
    return body, delivery_headers(body, [secret], stamp)


def event(
    type_: str,
    obj: dict[str, Any],
    *,
    created: int | None = None,
    event_id: str | None = None,
    previous_attributes: dict[str, Any] | None = None,
) -> dict[str, Any]:
    built = objects.event(
        event_type=type_,
        obj=obj,
        created=int(time.time()) if created is None else created,
        request_id=new_id("req_", 14),
        idempotency_key=secrets.token_hex(16),
    )
    if event_id:
        built["id"] = event_id
    if previous_attributes is not None:
        built["data"]["previous_attributes"] = previous_attributes
    return built


def _item(
    description: str, unit_amount: int, quantity: int, currency: str, now: int
) -> objects.Obj:
    # An invoice line is the sandbox's rendering of the Checkout item that was paid for.
    return objects.checkout_line_item(
        currency=currency,
        unit_amount=unit_amount,
        quantity=quantity,
        name=description,
        description=None,
        created=now,
    )


def invoice_line(
    invoice_id: str,
    *,
    amount: int,
    quantity: int = 1,
    description: str = "1 x Pro plan",
    currency: str = "eur",
    period_start: int | None = None,
    period_end: int | None = None,
) -> dict[str, Any]:
    now = int(time.time())
    item = _item(description, amount // max(quantity, 1), quantity, currency, now)
    line = objects.invoice_line(invoice_id=invoice_id, item=item, period=now)
    # ``amount`` wins over unit x quantity when it does not divide evenly.
    line.update(
        amount=amount,
        subtotal=amount,
        period={"end": period_end or now, "start": period_start or now},
    )
    return line


def invoice(
    status: str,
    *,
    invoice_id: str | None = None,
    customer: str = "cus_TestCustomer0001",
    lines: list[tuple[str, int, int]] | None = None,
    created: int | None = None,
    currency: str = "eur",
) -> dict[str, Any]:
    """A full invoice object in ``status`` (draft, open, paid, void, uncollectible).

    Args:
        lines: ``(description, unit_amount, quantity)`` for each line.
    """
    invoice_id = invoice_id or new_id("in_")
    created = int(time.time()) - 60 if created is None else created
    line_specs = lines or [("1 x Pro plan", 1500, 1), ("2 x Sticker pack", 250, 2)]
    buyer = objects.customer(
        created=created,
        email="ada@example.com",
        name="Ada Lovelace",
        description=None,
        phone=None,
        metadata={},
    )
    buyer["id"] = customer
    built = objects.invoice(
        invoice_id=invoice_id,
        created=created,
        customer_obj=buyer,
        currency=currency,
        items=[_item(desc, unit, qty, currency, created) for desc, unit, qty in line_specs],
        description=None,
        metadata={},
        account_country="FR",
        account_name="Facturation Demo",
    )
    built["auto_advance"] = status in ("draft", "open")
    if status == "draft":
        return built
    hosted = f"https://invoice.stripe.com/i/acct_1TestAccount/test_{invoice_id}"
    built = invoice_lifecycle.finalize(
        built,
        at=created + 1,
        number=f"A1B2C3D4-{zlib.crc32(invoice_id.encode()) % 10000:04d}",
        hosted_invoice_url=hosted,
        invoice_pdf=f"{hosted}/pdf?s=ap",
    ).invoice
    moves = {
        "open": None,
        "paid": invoice_lifecycle.pay,
        "void": invoice_lifecycle.void,
        "uncollectible": invoice_lifecycle.mark_uncollectible,
    }
    move = moves[status]
    return built if move is None else move(built, at=created + 2).invoice


def checkout_session(
    *,
    session_id: str | None = None,
    customer: str = "cus_TestCustomer0001",
    status: str = "complete",
    payment_status: str = "paid",
    invoice_id: str | None = None,
    amount_total: int = 2000,
    currency: str = "eur",
    metadata: dict[str, str] | None = None,
    created: int | None = None,
) -> dict[str, Any]:
    """A full embedded Checkout Session object in ``payment`` mode with invoice creation."""
    created = int(time.time()) - 120 if created is None else created
    session = objects.checkout_session(
        created=created,
        expires_at=created + 86400,
        currency=currency,
        amount_total=amount_total,
        customer_id=customer,
        customer_email=None,
        client_reference_id=None,
        return_url=None,
        redirect_on_completion="always",
        metadata=metadata or {},
        invoice_creation=objects.invoice_creation(
            enabled=True, description=None, footer=None, metadata={}
        ),
        locale=None,
    )
    session_id = session_id or session["id"]
    # What Stripe shows once the buyer has been through the page (the sandbox's completion).
    session.update(
        id=session_id,
        client_secret=None,
        collected_information={
            "business_name": None,
            "individual_name": None,
            "shipping_details": None,
        },
        customer_details={
            "address": {
                "city": None,
                "country": "FR",
                "line1": None,
                "line2": None,
                "postal_code": None,
                "state": None,
            },
            "business_name": None,
            "email": "ada@example.com",
            "individual_name": None,
            "name": "Ada Lovelace",
            "phone": None,
            "tax_exempt": "none",
            "tax_ids": [],
        },
        invoice=invoice_id,
        payment_intent=new_id("pi_") if payment_status == "paid" else None,
        payment_method_configuration_details={"id": new_id("pmc_"), "parent": None},
        payment_status=payment_status,
        return_url=f"http://localhost:8000/checkout/return?session_id={session_id}",
        saved_payment_method_options={
            "allow_redisplay_filters": ["always"],
            "payment_method_remove": "disabled",
            "payment_method_save": None,
        },
        status=status,
    )
    return session


def customer_event(type_: str = "customer.updated") -> dict[str, Any]:
    """An event of a type the service does not handle."""
    customer = objects.customer(
        created=int(time.time()) - 3600,
        email="ada@example.com",
        name="Ada Lovelace",
        description=None,
        phone=None,
        metadata={"user_id": "00000000-0000-4000-8000-000000000001"},
    )
    customer.update(currency="eur", invoice_prefix="A1B2C3D4", next_invoice_sequence=2)
    return event(type_, customer)


# --- charges, refunds and disputes (issue 10) ---


def charge(
    *,
    payment_intent: str,
    amount: int = 2000,
    amount_refunded: int = 0,
    refunds: list[dict[str, Any]] | None = None,
    currency: str = "eur",
    charge_id: str | None = None,
) -> dict[str, Any]:
    """A card charge; ``refunds`` lists its refunds as an expanded ``refunds`` list would."""
    built = payments.charge(
        charge_id=charge_id or new_id("ch_"),
        created=int(time.time()) - 100,
        amount=amount,
        currency=currency,
        customer_id="cus_TestCustomer0001",
        payment_intent=payment_intent,
        payment_method=new_id("pm_"),
    )
    built.update(amount_refunded=amount_refunded, refunded=amount_refunded >= amount)
    if refunds is not None:
        built["refunds"] = objects.list_object(refunds, f"/v1/charges/{built['id']}/refunds")
    return built


def refund(
    *,
    payment_intent: str,
    amount: int,
    status: str = "succeeded",
    refund_id: str | None = None,
    charge_id: str = "ch_TestCharge0001",
    created: int | None = None,
    currency: str = "eur",
) -> dict[str, Any]:
    return payments.refund(
        created=int(time.time()) - 50 if created is None else created,
        amount=amount,
        currency=currency,
        charge_id=charge_id,
        payment_intent=payment_intent,
        status=status,
        refund_id=refund_id,
    )


def dispute(
    *,
    payment_intent: str,
    status: str = "needs_response",
    amount: int = 2000,
    dispute_id: str | None = None,
    charge_id: str = "ch_TestCharge0001",
) -> dict[str, Any]:
    return payments.dispute(
        created=int(time.time()) - 40,
        amount=amount,
        currency="eur",
        charge_id=charge_id,
        payment_intent=payment_intent,
        status=status,
        dispute_id=dispute_id,
    )


# --- subscriptions (issue 11): the shape of SUBSCRIPTIONS_CONTRACT.md, API 2026-10-28 ---


def subscription(
    *,
    subscription_id: str | None = None,
    status: str = "active",
    customer: str = "cus_TestCustomer0001",
    metadata: dict[str, str] | None = None,
    period_start: int | None = None,
    period_end: int | None = None,
    cancel_at_period_end: bool = False,
    canceled_at: int | None = None,
    ended_at: int | None = None,
    created: int | None = None,
    unit_amount: int = 1500,
    currency: str = "eur",
    interval: str = "month",
) -> dict[str, Any]:
    """A full subscription object: the period lives on its item, not at the top level."""
    created = int(time.time()) - 3600 if created is None else created
    period_start = created if period_start is None else period_start
    period_end = period_start + 30 * 86400 if period_end is None else period_end
    subscription_id = subscription_id or new_id("sub_")
    price = {
        "id": new_id("price_"),
        "object": "price",
        "active": True,
        "billing_scheme": "per_unit",
        "created": created,
        "currency": currency,
        "livemode": False,
        "lookup_key": None,
        "metadata": {},
        "nickname": None,
        "product": new_id("prod_"),
        "recurring": {
            "interval": interval,
            "interval_count": 1,
            "meter": None,
            "usage_type": "licensed",
        },
        "tax_behavior": "unspecified",
        "tiers_mode": None,
        "transform_quantity": None,
        "type": "recurring",
        "unit_amount": unit_amount,
        "unit_amount_decimal": str(unit_amount),
    }
    item = {
        "id": new_id("si_"),
        "object": "subscription_item",
        "created": created,
        "current_period_end": period_end,
        "current_period_start": period_start,
        "discounts": [],
        "metadata": {},
        "price": price,
        "quantity": 1,
        "subscription": subscription_id,
        "tax_rates": [],
    }
    return {
        "id": subscription_id,
        "object": "subscription",
        "application": None,
        "automatic_tax": {"disabled_reason": None, "enabled": False, "liability": None},
        "billing_cycle_anchor": period_start,
        "cancel_at": period_end if cancel_at_period_end else None,
        "cancel_at_period_end": cancel_at_period_end,
        "canceled_at": canceled_at,
        "cancellation_details": {"comment": None, "feedback": None, "reason": None},
        "collection_method": "charge_automatically",
        "created": created,
        "currency": currency,
        "customer": customer,
        "days_until_due": None,
        "default_payment_method": None,
        "description": None,
        "discounts": [],
        "ended_at": ended_at,
        "items": objects.list_object(
            [item], f"/v1/subscription_items?subscription={subscription_id}"
        ),
        "latest_invoice": new_id("in_"),
        "livemode": False,
        "metadata": metadata or {},
        "pending_update": None,
        "schedule": None,
        "start_date": created,
        "status": status,
        "trial_end": None,
        "trial_start": None,
    }


def subscription_invoice(
    subscription_id: str,
    *,
    period_start: int,
    period_end: int,
    status: str = "paid",
    metadata: dict[str, str] | None = None,
    customer: str = "cus_TestCustomer0001",
    billing_reason: str = "subscription_cycle",
) -> dict[str, Any]:
    """An invoice of a subscription: ``parent.subscription_details`` names it, and its line
    carries the item's period."""
    built = invoice(status, customer=customer, lines=[("1 x Plus plan", 1500, 1)])
    built.update(
        billing_reason=billing_reason,
        parent={
            "type": "subscription_details",
            "quote_details": None,
            "subscription_details": {
                "subscription": subscription_id,
                "metadata": metadata or {},
            },
        },
    )
    for line in built["lines"]["data"]:
        line["period"] = {"start": period_start, "end": period_end}
    return built
