"""The product catalog: the only source of prices. Read once at start-up from a JSON file."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated, Literal

import msgspec

from shared import SettingsError

__all__ = ["Catalog", "Product", "Recurring", "load_catalog"]

DEMO_CATALOG = Path(__file__).with_name("catalog.json")


class Recurring(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """A subscription plan's billing period, as Stripe's ``price.recurring`` names it."""

    interval: Literal["day", "week", "month", "year"]
    interval_count: Annotated[int, msgspec.Meta(ge=1, le=365)] = 1

    def __post_init__(self) -> None:
        # Stripe bills at least once a year.
        if self.interval_count > _MAX_INTERVAL_COUNT[self.interval]:
            raise ValueError(f"recurring: at most one year between billings ({self.interval})")


_MAX_INTERVAL_COUNT = {"day": 365, "week": 52, "month": 12, "year": 1}


class Product(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    id: Annotated[str, msgspec.Meta(pattern=r"^[a-z0-9][a-z0-9_-]{0,63}$")]
    name: Annotated[str, msgspec.Meta(min_length=1, max_length=250)]
    unit_amount: Annotated[int, msgspec.Meta(ge=0)]
    """Price in the currency's minor unit (cents); 0 is a free product."""
    currency: Annotated[str, msgspec.Meta(pattern=r"^[a-z]{3}$")]
    """ISO 4217 code, lower case as Stripe writes it."""
    description: str = ""
    recurring: Recurring | None = None
    """Set for a subscription plan (bought alone, in ``mode=subscription``); ``None`` otherwise."""


class _CatalogFile(msgspec.Struct, forbid_unknown_fields=True):
    products: list[Product]


class Catalog:
    def __init__(self, products: list[Product]) -> None:
        self.products = products
        self._by_id = {product.id: product for product in products}
        if len(self._by_id) != len(products):
            raise ValueError("duplicate product id")

    def get(self, product_id: str) -> Product | None:
        return self._by_id.get(product_id)


def load_catalog(path: str | Path | None = None) -> Catalog:
    """Raises SettingsError in one line when the file is missing or invalid."""
    source = Path(path) if path else DEMO_CATALOG
    try:
        data = msgspec.json.decode(source.read_bytes(), type=_CatalogFile)
        return Catalog(data.products)
    except (OSError, msgspec.DecodeError, ValueError) as exc:
        message = re.sub(r"\s+", " ", str(exc))
        raise SettingsError(f"invalid catalog {source}: {message}") from None
