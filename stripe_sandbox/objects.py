"""Full Stripe objects of API version 2026-10-28.endive, as plain JSON-ready dicts.

Every field the version defines is present (``None`` where Stripe sends null), so a consumer
that parses real Stripe payloads parses these too.
"""

from __future__ import annotations

import secrets
import string
from typing import Any

__all__ = [
    "API_VERSION",
    "checkout_line_item",
    "checkout_session",
    "customer",
    "event",
    "invoice",
    "invoice_creation",
    "invoice_line",
    "list_object",
    "new_id",
    "payment_intent",
]

API_VERSION = "2026-10-28.endive"
_ALPHABET = string.ascii_letters + string.digits

Obj = dict[str, Any]


def new_id(prefix: str, length: int = 24) -> str:
    """``prefix`` and ``length`` letters and digits, each drawn uniformly from the OS's random
    bytes: one read of them per id (``secrets.choice`` read them once per character, and a
    Checkout Session's nine ids cost a third of the sandbox's CPU per call)."""
    drawn: list[str] = []
    while len(drawn) < length:
        # 248 = 4 x 62: a byte below it picks a character with no bias; the others are dropped.
        drawn += [_ALPHABET[byte % 62] for byte in secrets.token_bytes(2 * length) if byte < 248]
    return prefix + "".join(drawn[:length])


def list_object(data: list[Obj], url: str, *, has_more: bool = False) -> Obj:
    return {"object": "list", "data": data, "has_more": has_more, "url": url}


def customer(
    *,
    created: int,
    email: str | None,
    name: str | None,
    description: str | None,
    phone: str | None,
    metadata: dict[str, str],
) -> Obj:
    return {
        "id": new_id("cus_", 14),
        "object": "customer",
        "address": None,
        "balance": 0,
        "business_name": None,
        "created": created,
        "currency": None,
        "customer_account": None,
        "default_source": None,
        "delinquent": False,
        "description": description,
        "discount": None,
        "email": email,
        "individual_name": None,
        "invoice_prefix": new_id("", 8).upper(),
        "invoice_settings": {
            "custom_fields": None,
            "default_payment_method": None,
            "footer": None,
            "rendering_options": None,
        },
        "livemode": False,
        "metadata": metadata,
        "name": name,
        "next_invoice_sequence": 1,
        "phone": phone,
        "preferred_locales": [],
        "shipping": None,
        "tax_exempt": "none",
        "test_clock": None,
    }


def checkout_line_item(
    *,
    currency: str,
    unit_amount: int,
    quantity: int,
    name: str,
    description: str | None,
    created: int,
    recurring: Obj | None = None,
) -> Obj:
    """A Checkout ``item`` with the ad-hoc price and product ``price_data`` creates (a recurring
    one in subscription mode)."""
    product_id = new_id("prod_", 14)
    amount = unit_amount * quantity
    return {
        "id": new_id("li_"),
        "object": "item",
        "amount_discount": 0,
        "amount_subtotal": amount,
        "amount_tax": 0,
        "amount_total": amount,
        "currency": currency,
        "description": name,
        "metadata": {},
        "price": {
            "id": new_id("price_"),
            "object": "price",
            "active": False,
            "billing_scheme": "per_unit",
            "created": created,
            "currency": currency,
            "custom_unit_amount": None,
            "livemode": False,
            "lookup_key": None,
            "metadata": {},
            "nickname": None,
            "product": product_id,
            "recurring": recurring,
            "tax_behavior": "unspecified",
            "tiers_mode": None,
            "transform_quantity": None,
            "type": "one_time" if recurring is None else "recurring",
            "unit_amount": unit_amount,
            "unit_amount_decimal": str(unit_amount),
        },
        "quantity": quantity,
    }


def invoice_creation(
    *, enabled: bool, description: str | None, footer: str | None, metadata: dict[str, str]
) -> Obj:
    """A Checkout Session's ``invoice_creation``: the invoice it makes once paid."""
    return {
        "enabled": enabled,
        "invoice_data": {
            "account_tax_ids": None,
            "custom_fields": None,
            "description": description,
            "footer": footer,
            "issuer": None,
            "metadata": metadata,
            "rendering_options": None,
        },
    }


def checkout_session(
    *,
    created: int,
    expires_at: int,
    currency: str,
    amount_total: int,
    customer_id: str | None,
    customer_email: str | None,
    client_reference_id: str | None,
    return_url: str | None,
    redirect_on_completion: str,
    metadata: dict[str, str],
    invoice_creation: Obj | None,
    locale: str | None,
    mode: str = "payment",
) -> Obj:
    session_id = new_id("cs_test_", 58)
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
        "client_reference_id": client_reference_id,
        "client_secret": f"{session_id}_secret_{new_id('', 24)}",
        "collected_information": None,
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
        "customer": customer_id,
        "customer_account": None,
        "customer_creation": None
        if customer_id
        else "if_required"
        if mode == "payment"
        else "always",
        "customer_details": None,
        "customer_email": customer_email,
        "discounts": [],
        "expires_at": expires_at,
        "integration_identifier": None,
        "invoice": None,
        "invoice_creation": invoice_creation,
        "livemode": False,
        "locale": locale,
        "managed_payments": None,
        "metadata": metadata,
        "mode": mode,
        "name_collection": None,
        "optional_items": None,
        "origin_context": None,
        "payment_intent": None,
        "payment_link": None,
        "payment_method_collection": "if_required" if mode == "payment" else "always",
        "payment_method_configuration_details": None,
        "payment_method_options": {"card": {"request_three_d_secure": "automatic"}},
        "payment_method_types": ["card"],
        "payment_status": "unpaid",
        "permissions": None,
        "phone_number_collection": {"enabled": False},
        "presentment_details": None,
        "recovered_from": None,
        "redirect_on_completion": redirect_on_completion,
        "return_url": return_url,
        "saved_payment_method_options": None,
        "setup_intent": None,
        "shipping_address_collection": None,
        "shipping_cost": None,
        "shipping_options": [],
        "status": "open",
        "submit_type": None,
        "subscription": None,
        "success_url": None,
        "tax_id_collection": {"enabled": False, "required": "never"},
        "total_details": {"amount_discount": 0, "amount_shipping": 0, "amount_tax": 0},
        "ui_mode": "embedded_page",
        "url": None,
        "wallet_options": None,
    }


def payment_intent(
    *, created: int, amount: int, currency: str, customer_id: str | None, metadata: dict[str, str]
) -> Obj:
    intent_id = new_id("pi_")
    return {
        "id": intent_id,
        "object": "payment_intent",
        "allowed_payment_method_types": None,
        "amount": amount,
        "amount_capturable": 0,
        "amount_details": {"tip": {}},
        "amount_received": amount,
        "application": None,
        "application_fee_amount": None,
        "automatic_payment_methods": None,
        "canceled_at": None,
        "cancellation_reason": None,
        "capture_method": "automatic_async",
        "client_secret": f"{intent_id}_secret_{new_id('', 24)}",
        "confirmation_method": "automatic",
        "created": created,
        "currency": currency,
        "customer": customer_id,
        "customer_account": None,
        "description": None,
        "excluded_payment_method_types": None,
        "last_payment_error": None,
        "latest_charge": new_id("ch_"),
        "livemode": False,
        "managed_payments": None,
        "metadata": metadata,
        "next_action": None,
        "on_behalf_of": None,
        "payment_details": None,
        "payment_method": new_id("pm_"),
        "payment_method_configuration_details": None,
        "payment_method_options": {"card": {"request_three_d_secure": "automatic"}},
        "payment_method_types": ["card"],
        "presentment_details": None,
        "processing": None,
        "receipt_email": None,
        "review": None,
        "setup_future_usage": None,
        "shipping": None,
        "source": None,
        "statement_descriptor": None,
        "statement_descriptor_suffix": None,
        "status": "succeeded",
        "transfer_data": None,
        "transfer_group": None,
    }


def invoice_line(*, invoice_id: str, item: Obj, period: int) -> Obj:
    price = item["price"]
    return {
        "id": new_id("il_"),
        "object": "line_item",
        "amount": item["amount_total"],
        "currency": item["currency"],
        "description": item["description"],
        "discount_amounts": [],
        "discountable": True,
        "discounts": [],
        "invoice": invoice_id,
        "livemode": False,
        "metadata": {},
        "parent": {
            "type": "invoice_item_details",
            "invoice_item_details": {
                "invoice_item": new_id("ii_"),
                "proration": False,
                "proration_details": {"credited_items": None},
                "subscription": None,
            },
            "subscription_item_details": None,
        },
        "period": {"end": period, "start": period},
        "pretax_credit_amounts": [],
        "pricing": {
            "price_details": {"price": price["id"], "product": price["product"]},
            "type": "price_details",
            "unit_amount_decimal": price["unit_amount_decimal"],
        },
        "quantity": item["quantity"],
        "quantity_decimal": str(item["quantity"]),
        "subscription": None,
        "subtotal": item["amount_subtotal"],
        "taxes": [],
    }


def invoice(
    *,
    created: int,
    customer_obj: Obj,
    currency: str,
    items: list[Obj],
    description: str | None,
    metadata: dict[str, str],
    account_country: str,
    account_name: str,
    invoice_id: str | None = None,
) -> Obj:
    """A draft invoice: ``invoice_lifecycle`` moves it on as Stripe does."""
    invoice_id = invoice_id or new_id("in_")
    lines = [invoice_line(invoice_id=invoice_id, item=item, period=created) for item in items]
    total = sum(line["amount"] for line in lines)
    return {
        "id": invoice_id,
        "object": "invoice",
        "account_country": account_country,
        "account_name": account_name,
        "account_tax_ids": None,
        "amount_due": total,
        "amount_overpaid": 0,
        "amount_paid": 0,
        "amount_paid_off_stripe": 0,
        "amount_remaining": total,
        "amount_shipping": 0,
        "application": None,
        "attempt_count": 0,
        "attempted": False,
        "auto_advance": False,
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
        "customer": customer_obj["id"],
        "customer_account": None,
        "customer_address": customer_obj["address"],
        "customer_email": customer_obj["email"],
        "customer_name": customer_obj["name"],
        "customer_phone": customer_obj["phone"],
        "customer_shipping": None,
        "customer_tax_exempt": "none",
        "customer_tax_ids": [],
        "default_payment_method": None,
        "default_source": None,
        "default_tax_rates": [],
        "description": description,
        "discounts": [],
        "due_date": None,
        "effective_at": None,
        "ending_balance": None,
        "footer": None,
        "from_invoice": None,
        "hosted_invoice_url": None,
        "invoice_pdf": None,
        "issuer": {"type": "self"},
        "last_finalization_error": None,
        "latest_revision": None,
        "lines": {
            "object": "list",
            "data": lines,
            "has_more": False,
            "total_count": len(lines),
            "url": f"/v1/invoices/{invoice_id}/lines",
        },
        "livemode": False,
        "metadata": metadata,
        "next_payment_attempt": None,
        "number": None,
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
        "status": "draft",
        "status_transitions": {
            "finalized_at": None,
            "marked_uncollectible_at": None,
            "paid_at": None,
            "voided_at": None,
        },
        "subtotal": total,
        "subtotal_excluding_tax": total,
        "test_clock": None,
        "threshold_reason": None,
        "total": total,
        "total_discount_amounts": [],
        "total_excluding_tax": total,
        "total_pretax_credit_amounts": [],
        "total_taxes": [],
        "webhooks_delivered_at": None,
    }


def event(
    *,
    event_type: str,
    obj: Obj,
    created: int,
    request_id: str | None,
    idempotency_key: str | None,
    previous_attributes: Obj | None = None,
) -> Obj:
    data: Obj = {"object": obj}
    if previous_attributes is not None:
        data["previous_attributes"] = previous_attributes
    return {
        "id": new_id("evt_"),
        "object": "event",
        "account": None,
        "api_version": API_VERSION,
        "context": None,
        "created": created,
        "data": data,
        "livemode": False,
        "pending_webhooks": 1,
        "request": {"id": request_id, "idempotency_key": idempotency_key},
        "type": event_type,
    }
