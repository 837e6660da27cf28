"""Catalog and basket: prices come from the server only; bad baskets are 422 and change nothing."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest

from facturation_service.catalog import load_catalog
from facturation_service.checkout import price_basket
from facturation_service.schemas import BasketItem
from shared import PROBLEM_MEDIA_TYPE, SettingsError, UnprocessableError
from tests.support.sandbox import InProcessSandbox
from tests.unit.facturation_service.conftest import FakeAuth, as_user


async def test_products_lists_the_catalog_with_a_free_product_and_paid_ones(
    client: httpx.AsyncClient,
) -> None:
    response = await client.get("/products")

    assert response.status_code == 200
    products = {p["id"]: p for p in response.json()["products"]}
    assert products["starter-guide"]["unit_amount"] == 0
    assert products["pro-month"] == {
        "id": "pro-month",
        "name": "Pro plan, one month",
        "description": "Every feature for one month.",
        "unit_amount": 1900,
        "currency": "eur",
        "recurring": None,
    }
    assert all(isinstance(p["unit_amount"], int) for p in products.values())


async def test_basket_is_priced_on_the_server_and_returns_the_user_from_auth(
    client: httpx.AsyncClient, fake_auth: FakeAuth
) -> None:
    user_id = fake_auth.add_user("grace@example.com")

    response = await client.post(
        "/basket/validate",
        json={
            "items": [
                {"product_id": "pro-month", "quantity": 1, "unit_amount": 1, "amount": 1},
                {"product_id": "team-seat", "quantity": 4, "currency": "usd"},
                {"product_id": "starter-guide", "quantity": 1},
            ]
        },
        headers=as_user(user_id),
    )

    assert response.status_code == 200, response.text
    body = response.json()
    assert [
        (line["product_id"], line["unit_amount"], line["amount"]) for line in body["lines"]
    ] == [
        ("pro-month", 1900, 1900),
        ("team-seat", 900, 3600),
        ("starter-guide", 0, 0),
    ]
    assert body["amount_total"] == 5500
    assert body["currency"] == "eur"
    assert body["user"] == {
        "id": user_id,
        "email": "grace@example.com",
        "name": "Ada Lovelace",
        "user_stripe_id": None,
    }
    assert body["needs_stripe_customer"] is True


async def test_needs_stripe_customer_is_false_once_the_customer_exists(
    client: httpx.AsyncClient, fake_auth: FakeAuth
) -> None:
    user_id = fake_auth.add_user()
    created = await client.post("/billing/customer", headers=as_user(user_id))

    response = await client.post(
        "/basket/validate",
        json={"items": [{"product_id": "pro-month", "quantity": 1}]},
        headers=as_user(user_id),
    )

    assert response.json()["needs_stripe_customer"] is False
    assert response.json()["user"]["user_stripe_id"] == created.json()["user_stripe_id"]


@pytest.mark.parametrize(
    ("items", "detail"),
    [
        ([], "The basket is empty."),
        ([{"product_id": "no-such-thing", "quantity": 1}], "Unknown products: no-such-thing"),
        ([{"product_id": "pro-month", "quantity": 0}], "must be at least 1"),
        ([{"product_id": "pro-month", "quantity": -3}], "must be at least 1"),
        ([{"product_id": "pro-month", "quantity": 101}], "must be at most 100"),
        ([{"product_id": "pro-month", "quantity": 10**12}], "must be at most 100"),
        (
            [
                {"product_id": "pro-month", "quantity": 60},
                {"product_id": "pro-month", "quantity": 41},
            ],
            "must be at most 100",
        ),
        (
            [
                {"product_id": "pro-month", "quantity": 1},
                {"product_id": "us-support-hour", "quantity": 1},
            ],
            "one currency",
        ),
    ],
)
@pytest.mark.parametrize("path", ["/basket/validate", "/billing/checkout-sessions"])
async def test_bad_baskets_are_422_problems_and_never_reach_stripe(
    client: httpx.AsyncClient,
    fake_auth: FakeAuth,
    sandbox: InProcessSandbox,
    path: str,
    items: list[dict[str, Any]],
    detail: str,
) -> None:
    user_id = fake_auth.add_user()

    response = await client.post(path, json={"items": items}, headers=as_user(user_id))

    assert response.status_code == 422
    assert response.headers["content-type"] == PROBLEM_MEDIA_TYPE
    assert detail in response.json()["detail"]
    assert list(sandbox.requests) == []


@pytest.mark.parametrize(
    "body",
    [
        {"items": [{"product_id": "pro-month", "quantity": "lots"}]},
        {"items": "pro-month"},
        {},
    ],
)
async def test_malformed_basket_bodies_are_400_problems(
    client: httpx.AsyncClient, fake_auth: FakeAuth, body: dict[str, Any]
) -> None:
    user_id = fake_auth.add_user()

    response = await client.post("/basket/validate", json=body, headers=as_user(user_id))

    assert response.status_code == 400
    assert response.headers["content-type"] == PROBLEM_MEDIA_TYPE


def test_the_same_product_twice_is_one_line_with_the_summed_quantity() -> None:
    basket = price_basket(
        load_catalog(),
        [BasketItem("team-seat", 2), BasketItem("pro-month", 1), BasketItem("team-seat", 3)],
    )

    assert [(line.product_id, line.quantity, line.amount) for line in basket.lines] == [
        ("team-seat", 5, 4500),
        ("pro-month", 1, 1900),
    ]
    assert basket.amount_total == 6400


def test_a_basket_of_free_products_is_free() -> None:
    basket = price_basket(load_catalog(), [BasketItem("starter-guide", 3)])

    assert basket.is_free
    assert basket.amount_total == 0


def test_unknown_products_are_all_named() -> None:
    with pytest.raises(UnprocessableError) as raised:
        price_basket(load_catalog(), [BasketItem("b", 1), BasketItem("a", 1)])

    assert raised.value.extra == {"unknown_products": ["a", "b"]}


@pytest.mark.parametrize(
    "content",
    [
        "not json",
        '{"products": [{"id": "x", "name": "X", "unit_amount": -1, "currency": "eur"}]}',
        '{"products": [{"id": "x", "name": "X", "unit_amount": 1.5, "currency": "eur"}]}',
        '{"products": [{"id": "x", "name": "X", "unit_amount": 1, "currency": "EURO"}]}',
        '{"products": [{"id": "x", "name": "X", "unit_amount": 1, "currency": "eur"},'
        ' {"id": "x", "name": "Y", "unit_amount": 2, "currency": "eur"}]}',
        '{"products": [{"id": "x", "name": "X", "unit_amount": 1, "currency": "eur",'
        ' "recurring": {"interval": "fortnight", "interval_count": 1}}]}',
        '{"products": [{"id": "x", "name": "X", "unit_amount": 1, "currency": "eur",'
        ' "recurring": {"interval": "month", "interval_count": 13}}]}',
    ],
)
def test_an_invalid_catalog_file_stops_start_up_in_one_line(tmp_path: Path, content: str) -> None:
    path = tmp_path / "catalog.json"
    path.write_text(content)

    with pytest.raises(SettingsError) as raised:
        load_catalog(path)

    assert "\n" not in str(raised.value)
    assert str(raised.value).startswith(f"invalid catalog {path}")
