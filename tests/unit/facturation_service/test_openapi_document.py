"""``/schema/openapi.json`` tells the truth (issue 15, finding 8): problem+json errors with their
statuses, the enforced constraints, the internal credential, and both answers of
``POST /billing/customer``."""

from __future__ import annotations

from typing import Any

import pytest

from facturation_service.app import create_app
from shared import PROBLEM_MEDIA_TYPE
from tests.support.api_documents import operations, served_document
from tests.support.webhook_app import INTERNAL_TOKEN, webhook_settings


@pytest.fixture
async def document(facturation_url: str) -> dict[str, Any]:
    app = create_app(webhook_settings(facturation_url, facturation_webhook_worker=False))
    return await served_document(app, INTERNAL_TOKEN)


async def test_every_error_is_documented_as_problem_json_with_the_problem_schema(
    document: dict[str, Any],
) -> None:
    problem = document["components"]["schemas"]["Problem"]
    assert set(problem["required"]) == {"type", "title", "status", "detail"}
    assert "request_id" in problem["properties"]
    for key, operation in operations(document).items():
        errors = {s: r for s, r in operation["responses"].items() if s[0] in "45"}
        assert "401" in errors, key
        for status, response in errors.items():
            assert list(response["content"]) == [PROBLEM_MEDIA_TYPE], (key, status)
            schema = response["content"][PROBLEM_MEDIA_TYPE]["schema"]
            assert schema == {"$ref": "#/components/schemas/Problem"}, (key, status)


@pytest.mark.parametrize(
    ("key", "statuses"),
    [
        ("POST /basket/validate", {"400", "401", "404", "413", "422", "502", "503"}),
        ("POST /billing/customer", {"401", "409", "502", "503", "504"}),
        ("POST /billing/checkout-sessions", {"400", "401", "409", "413", "422", "502", "503"}),
        ("GET /billing/invoices", {"400", "401"}),
        ("GET /billing/invoices/{invoice_id}", {"401", "404"}),
        ("POST /webhooks/stripe", {"400", "401", "413", "503"}),
        ("POST /internal/v1/webhook-deliveries", {"200", "400", "401", "413"}),
    ],
)
async def test_each_route_documents_the_statuses_it_answers(
    document: dict[str, Any], key: str, statuses: set[str]
) -> None:
    assert statuses <= set(operations(document)[key]["responses"])


async def test_creating_a_customer_documents_both_201_created_and_200_existing(
    document: dict[str, Any],
) -> None:
    responses = operations(document)["POST /billing/customer"]["responses"]

    assert responses["201"]["content"] == responses["200"]["content"]


async def test_every_route_requires_the_internal_credential(document: dict[str, Any]) -> None:
    scheme = document["components"]["securitySchemes"]["internalToken"]
    assert scheme == {
        "type": "apiKey",
        "in": "header",
        "name": "X-Internal-Token",
        "description": scheme["description"],
    }
    for key, operation in operations(document).items():
        assert operation["security"] == [{"internalToken": []}], key


async def test_request_constraints_are_documented(document: dict[str, Any]) -> None:
    schemas = document["components"]["schemas"]
    quantity = schemas["BasketItem"]["properties"]["quantity"]
    assert (quantity["minimum"], quantity["maximum"]) == (1, 100)
    assert schemas["BasketRequest"]["properties"]["items"]["maxItems"] == 50
    assert schemas["StripeCustomerUpdate"]["properties"]["user_stripe_id"]["pattern"].startswith(
        "^cus_"
    )
    parameters = operations(document)["GET /billing/invoices"]["parameters"]
    cursor = next(p for p in parameters if p["name"] == "cursor")
    assert cursor["schema"]["maxLength"] == 600
    assert cursor["schema"]["pattern"] == "^[A-Za-z0-9_=-]+$"
    user = next(p for p in parameters if p["name"] == "X-User-Id")
    assert user["required"] is True
