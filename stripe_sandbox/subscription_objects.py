"""Subscriptions, their items and recurring prices, and billing portal sessions (API version
2026-10-28.endive), as plain JSON-ready dicts. The periods live on the items, not on the
subscription (API 2025-03-31 moved them)."""

from __future__ import annotations

import calendar
from datetime import UTC, datetime, timedelta

from stripe_sandbox.objects import Obj, new_id

__all__ = [
    "INTERVALS",
    "period_end",
    "portal_session",
    "recurring",
    "subscription",
    "subscription_item",
]

INTERVALS = ("day", "week", "month", "year")


def recurring(interval: str, interval_count: int) -> Obj:
    """A price's ``recurring`` hash."""
    return {
        "interval": interval,
        "interval_count": interval_count,
        "meter": None,
        "trial_period_days": None,
        "usage_type": "licensed",
    }


def period_end(anchor: int, price_recurring: Obj, periods: int) -> int:
    """The end of the ``periods``-th period from ``anchor``, counted from the anchor as Stripe
    does (so 31 January renews on 28 February, then 31 March)."""
    steps = price_recurring["interval_count"] * periods
    start = datetime.fromtimestamp(anchor, UTC)
    interval = price_recurring["interval"]
    if interval == "day":
        return int((start + timedelta(days=steps)).timestamp())
    if interval == "week":
        return int((start + timedelta(weeks=steps)).timestamp())
    months = steps * 12 if interval == "year" else steps
    month_index = start.month - 1 + months
    year, month = start.year + month_index // 12, month_index % 12 + 1
    day = min(start.day, calendar.monthrange(year, month)[1])
    return int(start.replace(year=year, month=month, day=day).timestamp())


def subscription_item(*, subscription_id: str, line_item: Obj, created: int, end: int) -> Obj:
    """An item of the subscription, priced as the Checkout line item it comes from."""
    price = dict(line_item["price"])
    return {
        "id": new_id("si_", 14),
        "object": "subscription_item",
        "billed_until": None,
        "billing_thresholds": None,
        "created": created,
        "current_period_end": end,
        "current_period_start": created,
        "current_trial": None,
        "discounts": [],
        "metadata": {},
        "plan": None,
        "price": price,
        "quantity": line_item["quantity"],
        "subscription": subscription_id,
        "tax_rates": [],
    }


def subscription(
    *,
    subscription_id: str,
    customer_id: str,
    currency: str,
    items: list[Obj],
    metadata: dict[str, str],
    created: int,
    latest_invoice: str | None,
) -> Obj:
    return {
        "id": subscription_id,
        "object": "subscription",
        "application": None,
        "application_fee_percent": None,
        "automatic_tax": {"disabled_reason": None, "enabled": False, "liability": None},
        "billing_cycle_anchor": created,
        "billing_cycle_anchor_config": None,
        "billing_mode": {"flexible": None, "type": "classic", "updated_at": None},
        "billing_schedules": [],
        "billing_thresholds": None,
        "cancel_at": None,
        "cancel_at_period_end": False,
        "canceled_at": None,
        "cancellation_details": {"comment": None, "feedback": None, "reason": None},
        "collection_method": "charge_automatically",
        "created": created,
        "currency": currency,
        "customer": customer_id,
        "customer_account": None,
        "days_until_due": None,
        "default_payment_method": None,
        "default_source": None,
        "default_tax_rates": [],
        "description": None,
        "discounts": [],
        "ended_at": None,
        "invoice_settings": {"account_tax_ids": None, "issuer": {"type": "self"}},
        "items": {
            "object": "list",
            "data": items,
            "has_more": False,
            "total_count": len(items),
            "url": f"/v1/subscription_items?subscription={subscription_id}",
        },
        "latest_invoice": latest_invoice,
        "livemode": False,
        "managed_payments": None,
        "metadata": metadata,
        "next_pending_invoice_item_invoice": None,
        "on_behalf_of": None,
        "pause_collection": None,
        "payment_settings": {
            "payment_method_options": None,
            "payment_method_types": None,
            "save_default_payment_method": "off",
        },
        "pending_invoice_item_interval": None,
        "pending_setup_intent": None,
        "pending_update": None,
        "presentment_details": None,
        "schedule": None,
        "start_date": created,
        "status": "incomplete",
        "status_details": None,
        "test_clock": None,
        "transfer_data": None,
        "trial_end": None,
        "trial_settings": {"end_behavior": {"missing_payment_method": "create_invoice"}},
        "trial_start": None,
    }


def portal_session(*, customer_id: str, return_url: str | None, created: int, base: str) -> Obj:
    session_id = new_id("bps_", 24)
    return {
        "id": session_id,
        "object": "billing_portal.session",
        "after_expiration": None,
        "configuration": "bpc_sandbox_default",
        "created": created,
        "customer": customer_id,
        "customer_account": None,
        "flow": None,
        "livemode": False,
        "locale": None,
        "on_behalf_of": None,
        "return_url": return_url,
        "url": f"{base}/sandbox/portal/{session_id}",
    }
