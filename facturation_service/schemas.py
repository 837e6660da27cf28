"""Every request and response body of the facturation routes, as msgspec Structs.

Domain modules build these; route modules only declare them. Catalog products (``catalog.Product``)
and auth's user (``auth_client.AuthUser``) appear in responses as those modules define them.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

import msgspec

from facturation_service.auth_client import AuthUser
from facturation_service.catalog import Product
from facturation_service.models import WebhookEvent
from shared import documented

__all__ = [
    "MAX_LINES",
    "MAX_QUANTITY",
    "BasketItem",
    "BasketRequest",
    "BasketResponse",
    "CheckoutRequest",
    "CheckoutResponse",
    "CheckoutStatus",
    "CustomerResponse",
    "InvoiceDetail",
    "InvoiceLineView",
    "InvoicePage",
    "InvoiceSummary",
    "PricedLine",
    "ProductList",
    "StripeCustomerUpdate",
    "WebhookAck",
    "WebhookEventList",
    "WebhookEventView",
]

# --- catalog, basket and customer ---


class ProductList(msgspec.Struct):
    products: list[Product]


MAX_QUANTITY = 100
MAX_LINES = 50


class BasketItem(msgspec.Struct, frozen=True):
    product_id: Annotated[str, documented(min_length=1, max_length=255)]
    quantity: Annotated[int, documented(minimum=1, maximum=MAX_QUANTITY)]


_Items = Annotated[list[BasketItem], documented(min_items=1, max_items=MAX_LINES)]


class PricedLine(msgspec.Struct, frozen=True):
    product_id: str
    name: str
    quantity: int
    unit_amount: int
    amount: int
    currency: str


class BasketRequest(msgspec.Struct):
    items: _Items


class BasketResponse(msgspec.Struct):
    lines: list[PricedLine]
    amount_total: int
    currency: str
    user: AuthUser
    needs_stripe_customer: bool


class CustomerResponse(msgspec.Struct):
    user_id: str
    user_stripe_id: str


class StripeCustomerUpdate(msgspec.Struct):
    user_stripe_id: Annotated[str, documented(pattern="^cus_[A-Za-z0-9]{1,250}$")]


# --- checkout_session ---


class CheckoutRequest(msgspec.Struct):
    items: _Items
    return_url: str | None = None


class CheckoutResponse(msgspec.Struct):
    id: str
    """The Checkout Session id, or the order id when nothing was left to pay."""
    client_secret: str | None
    amount_total: int
    currency: str
    order_id: str
    status: str


class CheckoutStatus(msgspec.Struct):
    status: str | None
    payment_status: str | None
    invoice_id: str | None
    order_id: str | None = None
    order_status: str | None = None
    """The order after the return page's fulfil step: ``paid`` as soon as Stripe is."""


# --- invoice ---


class InvoiceSummary(msgspec.Struct):
    id: str
    number: str | None
    status: str | None
    currency: str
    amount_due: int
    amount_paid: int
    amount_remaining: int
    subtotal: int
    total: int
    created: int
    period_start: int | None
    period_end: int | None
    hosted_invoice_url: str | None
    invoice_pdf: str | None
    status_transitions: dict[str, Any]


class InvoiceLineView(msgspec.Struct):
    id: str
    description: str | None
    amount: int
    currency: str
    quantity: int | None
    price: str | None
    period_start: int | None
    period_end: int | None


class InvoiceDetail(InvoiceSummary):
    lines: list[InvoiceLineView]


class InvoicePage(msgspec.Struct):
    data: list[InvoiceSummary]
    has_more: bool
    next_cursor: str | None
    """Pass as ``cursor`` to get the next page; ``None`` on the last page."""


# --- webhook_event ---


class WebhookAck(msgspec.Struct):
    id: str
    duplicate: bool
    """Already journaled by an earlier delivery: stored once, acknowledged again."""
    handled: bool
    """``False`` for event types the service journals as ignored."""


class WebhookEventView(msgspec.Struct):
    """A journal entry as operators see it (the payload stays in the database)."""

    id: str
    type: str
    api_version: str | None
    created: int
    livemode: bool
    status: str
    attempts: int
    last_error: str | None
    received_at: datetime
    processed_at: datetime | None
    next_attempt_at: datetime

    @classmethod
    def of(cls, event: WebhookEvent) -> WebhookEventView:
        return cls(**{field: getattr(event, field) for field in cls.__struct_fields__})


class WebhookEventList(msgspec.Struct):
    data: list[WebhookEventView]
