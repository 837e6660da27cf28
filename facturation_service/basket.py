"""Pricing a basket on the server: client-sent prices are never read, only ids and quantities."""

from __future__ import annotations

from typing import Annotated

import msgspec

from facturation_service.catalog import Catalog
from shared import UnprocessableError, documented

__all__ = ["MAX_LINES", "MAX_QUANTITY", "BasketItem", "PricedBasket", "PricedLine", "price_basket"]

MAX_QUANTITY = 100
MAX_LINES = 50


class BasketItem(msgspec.Struct, frozen=True):
    product_id: Annotated[str, documented(min_length=1, max_length=255)]
    quantity: Annotated[int, documented(minimum=1, maximum=MAX_QUANTITY)]


class PricedLine(msgspec.Struct, frozen=True):
    product_id: str
    name: str
    quantity: int
    unit_amount: int
    amount: int
    currency: str


class PricedBasket(msgspec.Struct, frozen=True):
    lines: list[PricedLine]
    amount_total: int
    currency: str

    @property
    def is_free(self) -> bool:
        return self.amount_total == 0


def price_basket(catalog: Catalog, items: list[BasketItem]) -> PricedBasket:
    """Raises UnprocessableError (422) for an empty basket, unknown products, bad quantities or
    mixed currencies; the same product listed twice is one line."""
    if not items:
        raise UnprocessableError("The basket is empty.")
    if len(items) > MAX_LINES:
        raise UnprocessableError(f"A basket holds at most {MAX_LINES} lines.")
    quantities: dict[str, int] = {}
    for item in items:
        if item.quantity <= 0:
            raise UnprocessableError(f"Quantity of {item.product_id!r} must be at least 1.")
        quantities[item.product_id] = quantities.get(item.product_id, 0) + item.quantity
    unknown = sorted(product_id for product_id in quantities if catalog.get(product_id) is None)
    if unknown:
        raise UnprocessableError(
            "Unknown products: " + ", ".join(unknown), extra={"unknown_products": unknown}
        )
    lines: list[PricedLine] = []
    for product_id, quantity in quantities.items():
        if quantity > MAX_QUANTITY:
            raise UnprocessableError(f"Quantity of {product_id!r} must be at most {MAX_QUANTITY}.")
        product = catalog.get(product_id)
        assert product is not None
        lines.append(
            PricedLine(
                product_id=product.id,
                name=product.name,
                quantity=quantity,
                unit_amount=product.unit_amount,
                amount=product.unit_amount * quantity,
                currency=product.currency,
            )
        )
    currencies = sorted({line.currency for line in lines})
    if len(currencies) > 1:
        raise UnprocessableError(
            "A basket must be in one currency; it mixes " + ", ".join(currencies) + "."
        )
    return PricedBasket(
        lines=lines, amount_total=sum(line.amount for line in lines), currency=currencies[0]
    )
