"""Stripe events as Stripe sends them (API version 2026-10-28.endive), and a signer.

The builders return complete objects with every field Stripe puts in a webhook, so the tests prove
that the service accepts what it does not use. ``sign`` produces a real
``Stripe-Signature: t=...,v1=...`` header (HMAC-SHA256 over ``"{t}.{body}"``).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
import time
import zlib
from typing import Any

API_VERSION = "2026-10-28.endive"
WEBHOOK_SECRET = "whsec_test_" + "5f3c1e9a7b2d4c6e8f0a1b3c5d7e9f11"

_STATUS_TRANSITIONS = ("finalized_at", "marked_uncollectible_at", "paid_at", "voided_at")


def _id(prefix: str) -> str:
    return f"{prefix}_{secrets.token_hex(12)}"


def sign(body: bytes, secret: str = WEBHOOK_SECRET, *, timestamp: int | None = None) -> str:
    """The ``Stripe-Signature`` header value Stripe would send for ``body``."""
    stamp = int(time.time()) if timestamp is None else timestamp
    digest = hmac.new(secret.encode(), f"{stamp}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={stamp},v1={digest}"


def encode(event: dict[str, Any]) -> bytes:
    """The body as Stripe formats it (pretty-printed JSON)."""
    return json.dumps(event, indent=2).encode()


def signed_request(
    event: dict[str, Any], secret: str = WEBHOOK_SECRET, *, timestamp: int | None = None
) -> tuple[bytes, dict[str, str]]:
    body = encode(event)
    headers = {
        "Content-Type": "application/json; charset=utf-8",
        "Stripe-Signature": sign(body, secret, timestamp=timestamp),
        "User-Agent": "Stripe/1.0 (+https://stripe.com/docs/webhooks)",
    }
    return body, headers


def event(
    type_: str,
    obj: dict[str, Any],
    *,
    created: int | None = None,
    event_id: str | None = None,
    previous_attributes: dict[str, Any] | None = None,
) -> dict[str, Any]:
    data: dict[str, Any] = {"object": obj}
    if previous_attributes is not None:
        data["previous_attributes"] = previous_attributes
    return {
        "id": event_id or _id("evt"),
        "object": "event",
        "api_version": API_VERSION,
        "created": int(time.time()) if created is None else created,
        "data": data,
        "livemode": False,
        "pending_webhooks": 1,
        "request": {"id": _id("req"), "idempotency_key": secrets.token_hex(16)},
        "type": type_,
    }


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
    price_id = _id("price")
    return {
        "id": _id("il"),
        "object": "line_item",
        "amount": amount,
        "currency": currency,
        "description": description,
        "discount_amounts": [],
        "discountable": True,
        "discounts": [],
        "invoice": invoice_id,
        "livemode": False,
        "metadata": {},
        "parent": {
            "invoice_item_details": {
                "credited_items": None,
                "invoice_item": _id("ii"),
                "proration": False,
                "proration_details": {"credited_items": None},
                "subscription": None,
            },
            "subscription_item_details": None,
            "type": "invoice_item_details",
        },
        "period": {"end": period_end or now, "start": period_start or now},
        "pretax_credit_amounts": [],
        "pricing": {
            "price_details": {"price": price_id, "product": _id("prod")},
            "type": "price_details",
            "unit_amount_decimal": str(amount // max(quantity, 1)),
        },
        "quantity": quantity,
        "quantity_decimal": str(quantity),
        "subscription": None,
        "subtotal": amount,
        "taxes": [],
    }


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
    invoice_id = invoice_id or _id("in")
    created = int(time.time()) - 60 if created is None else created
    line_specs = lines or [("1 x Pro plan", 1500, 1), ("2 x Sticker pack", 250, 2)]
    line_items = [
        invoice_line(
            invoice_id,
            amount=unit * qty,
            quantity=qty,
            description=desc,
            currency=currency,
            period_start=created,
            period_end=created,
        )
        for desc, unit, qty in line_specs
    ]
    total = sum(line["amount"] for line in line_items)
    finalized = status != "draft"
    paid = status == "paid"
    number = f"A1B2C3D4-{zlib.crc32(invoice_id.encode()) % 10000:04d}" if finalized else None
    transitions: dict[str, Any] = dict.fromkeys(_STATUS_TRANSITIONS)
    if finalized:
        transitions["finalized_at"] = created + 1
    if paid:
        transitions["paid_at"] = created + 2
    if status == "void":
        transitions["voided_at"] = created + 2
    if status == "uncollectible":
        transitions["marked_uncollectible_at"] = created + 2
    hosted = (
        f"https://invoice.stripe.com/i/acct_1TestAccount/test_{invoice_id}" if finalized else None
    )
    return {
        "id": invoice_id,
        "object": "invoice",
        "account_country": "FR",
        "account_name": "Facturation Demo",
        "account_tax_ids": None,
        "amount_due": total,
        "amount_overpaid": 0,
        "amount_paid": total if paid else 0,
        "amount_paid_off_stripe": 0,
        "amount_remaining": 0 if paid or status == "void" else total,
        "amount_shipping": 0,
        "application": None,
        "attempt_count": 1 if paid else 0,
        "attempted": paid,
        "auto_advance": status in ("draft", "open"),
        "automatic_tax": {
            "disabled_reason": None,
            "enabled": False,
            "liability": None,
            "provider": None,
            "status": None,
        },
        "automatically_finalizes_at": None,
        "billing_reason": "manual",
        "collection_method": "charge_automatically",
        "confirmation_secret": None,
        "created": created,
        "currency": currency,
        "custom_fields": None,
        "customer": customer,
        "customer_account": None,
        "customer_address": None,
        "customer_email": "ada@example.com",
        "customer_name": "Ada Lovelace",
        "customer_phone": None,
        "customer_shipping": None,
        "customer_tax_exempt": "none",
        "customer_tax_ids": [],
        "default_payment_method": None,
        "default_source": None,
        "default_tax_rates": [],
        "description": None,
        "discounts": [],
        "due_date": None,
        "effective_at": created + 1 if finalized else None,
        "ending_balance": 0 if finalized else None,
        "footer": None,
        "from_invoice": None,
        "hosted_invoice_url": hosted,
        "invoice_pdf": f"{hosted}/pdf?s=ap" if hosted else None,
        "issuer": {"type": "self"},
        "last_finalization_error": None,
        "latest_revision": None,
        "lines": {
            "object": "list",
            "data": line_items,
            "has_more": False,
            "total_count": len(line_items),
            "url": f"/v1/invoices/{invoice_id}/lines",
        },
        "livemode": False,
        "metadata": {},
        "next_payment_attempt": None,
        "number": number,
        "on_behalf_of": None,
        "parent": None,
        "payment_settings": {
            "default_mandate": None,
            "payment_method_options": None,
            "payment_method_types": None,
        },
        "period_end": created,
        "period_start": created,
        "post_payment_credit_notes_amount": 0,
        "pre_payment_credit_notes_amount": 0,
        "receipt_number": None,
        "rendering": None,
        "shipping_cost": None,
        "shipping_details": None,
        "starting_balance": 0,
        "statement_descriptor": None,
        "status": status,
        "status_transitions": transitions,
        "subtotal": total,
        "subtotal_excluding_tax": total,
        "test_clock": None,
        "threshold_reason": None,
        "total": total,
        "total_discount_amounts": [],
        "total_excluding_tax": total,
        "total_pretax_credit_amounts": [],
        "total_taxes": [],
        "webhooks_delivered_at": created if finalized else None,
    }


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
    session_id = session_id or f"cs_test_{secrets.token_hex(24)}"
    created = int(time.time()) - 120 if created is None else created
    return {
        "id": session_id,
        "object": "checkout.session",
        "adaptive_pricing": {"enabled": False},
        "after_expiration": None,
        "allow_promotion_codes": None,
        "amount_subtotal": amount_total,
        "amount_total": amount_total,
        "automatic_tax": {"enabled": False, "liability": None, "provider": None, "status": None},
        "billing_address_collection": None,
        "branding_settings": None,
        "cancel_url": None,
        "client_reference_id": None,
        "client_secret": None,
        "collected_information": {
            "business_name": None,
            "individual_name": None,
            "shipping_details": None,
        },
        "consent": None,
        "consent_collection": None,
        "created": created,
        "currency": currency,
        "currency_conversion": None,
        "custom_fields": [],
        "custom_text": {
            "after_submit": None,
            "shipping_address": None,
            "submit": None,
            "terms_of_service_acceptance": None,
        },
        "customer": customer,
        "customer_account": None,
        "customer_creation": None,
        "customer_details": {
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
        "customer_email": None,
        "discounts": [],
        "expires_at": created + 86400,
        "integration_identifier": None,
        "invoice": invoice_id,
        "invoice_creation": {
            "enabled": True,
            "invoice_data": {
                "account_tax_ids": None,
                "custom_fields": None,
                "description": None,
                "footer": None,
                "issuer": None,
                "metadata": {},
                "rendering_options": None,
            },
        },
        "livemode": False,
        "locale": None,
        "managed_payments": None,
        "metadata": metadata or {},
        "mode": "payment",
        "name_collection": None,
        "optional_items": None,
        "origin_context": None,
        "payment_intent": _id("pi") if payment_status == "paid" else None,
        "payment_link": None,
        "payment_method_collection": "if_required",
        "payment_method_configuration_details": {"id": _id("pmc"), "parent": None},
        "payment_method_options": {"card": {"request_three_d_secure": "automatic"}},
        "payment_method_types": ["card"],
        "payment_status": payment_status,
        "permissions": None,
        "phone_number_collection": {"enabled": False},
        "presentment_details": None,
        "recovered_from": None,
        "redirect_on_completion": "always",
        "return_url": f"http://localhost:8000/checkout/return?session_id={session_id}",
        "saved_payment_method_options": {
            "allow_redisplay_filters": ["always"],
            "payment_method_remove": "disabled",
            "payment_method_save": None,
        },
        "setup_intent": None,
        "shipping_address_collection": None,
        "shipping_cost": None,
        "shipping_options": [],
        "status": status,
        "submit_type": None,
        "subscription": None,
        "success_url": None,
        "tax_id_collection": {"enabled": False, "required": "never"},
        "total_details": {"amount_discount": 0, "amount_shipping": 0, "amount_tax": 0},
        "ui_mode": "embedded_page",
        "url": None,
        "wallet_options": None,
    }


def customer_event(type_: str = "customer.updated") -> dict[str, Any]:
    """An event of a type the service does not handle."""
    return event(
        type_,
        {
            "id": _id("cus"),
            "object": "customer",
            "address": None,
            "balance": 0,
            "created": int(time.time()) - 3600,
            "currency": "eur",
            "default_source": None,
            "delinquent": False,
            "description": None,
            "email": "ada@example.com",
            "invoice_prefix": "A1B2C3D4",
            "invoice_settings": {
                "custom_fields": None,
                "default_payment_method": None,
                "footer": None,
                "rendering_options": None,
            },
            "livemode": False,
            "metadata": {"user_id": "00000000-0000-4000-8000-000000000001"},
            "name": "Ada Lovelace",
            "next_invoice_sequence": 2,
            "phone": None,
            "preferred_locales": [],
            "shipping": None,
            "tax_exempt": "none",
            "test_clock": None,
        },
    )
