"""``GET /api/v1/openapi.json`` (issue 15, finding 8): the public routes of the route table at
their ``/api/v1`` paths, composed from the services' own documents; nothing private, the bearer
token instead of the internal credential, and the gateway's own problems."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

import auth_service
import facturation_service.app
from gateway.openapi import OPENAPI_PATH, compose_public_document
from gateway.routes import ROUTES
from shared import PROBLEM_MEDIA_TYPE
from tests.support.api_documents import operations, served_document
from tests.support.webhook_app import webhook_settings

TOKEN = "unit-internal-token"


@pytest.fixture
async def public(tmp_path: Path) -> dict[str, Any]:
    auth_app = auth_service.create_app(
        auth_service.AuthSettings(
            internal_token=TOKEN,
            jwt_private_key=auth_service.generate_private_key_pem(),
            auth_database_url=f"sqlite:///{tmp_path / 'auth.db'}",
        )
    )
    facturation_app = facturation_service.app.create_app(
        webhook_settings(f"sqlite:///{tmp_path / 'f.db'}", facturation_webhook_worker=False)
    )
    return compose_public_document(
        {
            "auth": await served_document(auth_app, TOKEN),
            "facturation": await served_document(facturation_app, TOKEN),
        }
    )


async def test_the_public_document_holds_exactly_the_implemented_public_routes(
    public: dict[str, Any],
) -> None:
    assert public["openapi"].startswith("3.1")
    assert set(operations(public)) == {
        "POST /api/v1/auth/register",
        "POST /api/v1/auth/login",
        "POST /api/v1/auth/logout",
        "GET /api/v1/auth/jwks.json",
        "GET /api/v1/users/me",
        "PUT /api/v1/users/me/stripe-customer",
        "GET /api/v1/products",
        "POST /api/v1/basket/validate",
        "POST /api/v1/billing/customer",
        "POST /api/v1/billing/checkout-sessions",
        "GET /api/v1/billing/checkout-sessions/{checkout_id}",
        "GET /api/v1/billing/invoices",
        "GET /api/v1/billing/invoices/{invoice_id}",
        "GET /api/v1/billing/invoices/{invoice_id}/pdf",
        "GET /api/v1/billing/orders",
        "GET /api/v1/billing/orders/{order_id}",
        "GET /api/v1/billing/entitlements",
        "GET /api/v1/billing/subscriptions",
        "POST /api/v1/billing/subscriptions/{subscription_id}/cancel",
        "POST /api/v1/billing/subscriptions/{subscription_id}/resume",
        "POST /api/v1/billing/portal-sessions",
        "POST /webhooks/stripe",
        f"GET {OPENAPI_PATH}",
    }


async def test_no_private_route_header_or_credential_leaks_into_the_public_document(
    public: dict[str, Any],
) -> None:
    text = str(public)
    assert "/internal/" not in text
    assert "X-Internal-Token" not in text
    assert "X-User-Id" not in text
    assert "internalToken" not in text


async def test_token_routes_declare_the_bearer_and_the_others_no_security(
    public: dict[str, Any],
) -> None:
    needs_token = {route.path: route.needs_token for route in ROUTES}
    found = operations(public)
    for key, operation in found.items():
        path = key.split(" ", 1)[1]
        template = re.sub(r"\{(checkout|invoice|order|subscription)_id\}", "{id}", path)
        if needs_token.get(template):
            assert operation["security"] == [{"bearer": []}], key
            assert "401" in operation["responses"], key
        else:
            assert "security" not in operation, key
    assert "401" not in found["POST /api/v1/auth/register"]["responses"]
    assert "401" in found["POST /api/v1/auth/login"]["responses"]  # a wrong password


async def test_every_error_is_problem_json_and_every_schema_it_names_is_in_the_document(
    public: dict[str, Any],
) -> None:
    schemas = public["components"]["schemas"]
    for key, operation in operations(public).items():
        assert {"502", "504"} <= set(operation["responses"]), key
        for status, response in operation["responses"].items():
            if status[0] in "45":
                assert list(response["content"]) == [PROBLEM_MEDIA_TYPE], (key, status)
    for ref in _refs(public):
        assert ref.removeprefix("#/components/schemas/") in schemas, ref
    customer = operations(public)["POST /api/v1/billing/customer"]["responses"]
    assert {"200", "201"} <= set(customer)


def _refs(value: Any) -> list[str]:
    if isinstance(value, dict):
        found = [value["$ref"]] if isinstance(value.get("$ref"), str) else []
        return found + [ref for item in value.values() for ref in _refs(item)]
    if isinstance(value, list):
        return [ref for item in value for ref in _refs(item)]
    return []
