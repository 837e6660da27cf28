"""Request and response bodies of the customer, basket and checkout routes."""

from __future__ import annotations

from typing import Annotated

import msgspec

from facturation_service.auth_client import AuthUser
from facturation_service.basket import MAX_LINES, BasketItem, PricedLine
from facturation_service.catalog import Product
from shared import documented

_Items = Annotated[list[BasketItem], documented(min_items=1, max_items=MAX_LINES)]

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
