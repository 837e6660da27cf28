"""Auth's ``/schema/openapi.json`` tells the truth (issue 15, finding 8)."""

from __future__ import annotations

from typing import Any

import pytest

from auth_service import AuthSettings, create_app
from shared import PROBLEM_MEDIA_TYPE
from tests.support.api_documents import operations, served_document
from tests.unit.auth_service.conftest import INTERNAL_TOKEN


@pytest.fixture
async def document(settings: AuthSettings) -> dict[str, Any]:
    return await served_document(create_app(settings), INTERNAL_TOKEN)


@pytest.mark.parametrize(
    ("key", "statuses"),
    [
        ("POST /auth/register", {"400", "401", "409", "413", "422"}),
        ("POST /auth/login", {"400", "401", "413", "429"}),
        ("GET /users/me", {"401", "404"}),
        ("GET /internal/v1/tokens/check", {"401", "503"}),
        ("PUT /internal/v1/users/{user_id}/stripe-customer", {"400", "404", "409", "422"}),
    ],
)
async def test_each_route_documents_its_problems_as_problem_json(
    document: dict[str, Any], key: str, statuses: set[str]
) -> None:
    responses = operations(document)[key]["responses"]
    assert statuses <= set(responses)
    for status in statuses:
        assert list(responses[status]["content"]) == [PROBLEM_MEDIA_TYPE]


async def test_the_password_length_and_the_customer_id_pattern_are_documented(
    document: dict[str, Any],
) -> None:
    schemas = document["components"]["schemas"]
    password = schemas["RegisterRequest"]["properties"]["password"]
    assert (password["minLength"], password["maxLength"]) == (10, 1024)
    pattern = schemas["StripeCustomerRequest"]["properties"]["user_stripe_id"]["pattern"]
    assert pattern == "^cus_[A-Za-z0-9]{1,250}$"


async def test_routes_reading_a_bearer_token_declare_it_beside_the_internal_credential(
    document: dict[str, Any],
) -> None:
    schemes = document["components"]["securitySchemes"]
    assert schemes["bearer"] == {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"}
    found = operations(document)
    assert found["GET /internal/v1/tokens/check"]["security"] == [
        {"internalToken": [], "bearer": []}
    ]
    assert found["POST /auth/register"]["security"] == [{"internalToken": []}]
