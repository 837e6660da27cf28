"""Request and response bodies of the customer, basket and checkout routes."""

from __future__ import annotations

import msgspec

from facturation_service.auth_client import AuthUser
from facturation_service.basket import BasketItem, PricedLine
from facturation_service.catalog import Product

__all__ = [
    "BasketRequest",
    "BasketResponse",
    "CheckoutRequest",
    "CheckoutResponse",
    "CheckoutStatus",
    "CustomerResponse",
    "ProductList",
    "StripeCustomerUpdate",
]


class ProductList(msgspec.Struct):
    products: list[Product]


class BasketRequest(msgspec.Struct):
    items: list[BasketItem]


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
    user_stripe_id: str


class CheckoutRequest(msgspec.Struct):
    items: list[BasketItem]
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
    """The order after the return page's fulfil step (issue 10): ``paid`` as soon as Stripe is."""
