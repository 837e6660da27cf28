from __future__ import annotations

import pytest
from litestar.exceptions import MethodNotAllowedException

from gateway.routes import ROUTES, match_route
from shared import NotFoundError


@pytest.mark.parametrize(
    ("method", "path", "upstream", "needs_token", "upstream_path"),
    [
        ("POST", "/api/v1/auth/register", "auth", False, "/auth/register"),
        ("POST", "/api/v1/auth/login", "auth", False, "/auth/login"),
        ("POST", "/api/v1/auth/logout", "auth", True, "/auth/logout"),
        ("GET", "/api/v1/auth/jwks.json", "auth", False, "/auth/jwks.json"),
        ("GET", "/api/v1/users/me", "auth", True, "/users/me"),
        (
            "PUT",
            "/api/v1/users/me/stripe-customer",
            "facturation",
            True,
            "/users/me/stripe-customer",
        ),
        ("GET", "/api/v1/products", "facturation", False, "/products"),
        ("POST", "/api/v1/basket/validate", "facturation", True, "/basket/validate"),
        ("POST", "/api/v1/billing/customer", "facturation", True, "/billing/customer"),
        ("GET", "/api/v1/billing/invoices/in_1", "facturation", True, "/billing/invoices/in_1"),
        ("GET", "/api/v1/billing/orders", "facturation", True, "/billing/orders"),
        ("GET", "/api/v1/billing/orders/ord_1", "facturation", True, "/billing/orders/ord_1"),
        ("GET", "/api/v1/billing/entitlements", "facturation", True, "/billing/entitlements"),
        ("POST", "/webhooks/stripe", "facturation", False, "/webhooks/stripe"),
    ],
)
def test_route_table_matches_the_contract(
    method: str, path: str, upstream: str, needs_token: bool, upstream_path: str
) -> None:
    route = match_route(method, path)
    assert route.upstream == upstream
    assert route.needs_token is needs_token
    assert route.upstream_path(path) == upstream_path


@pytest.mark.parametrize(
    "path",
    [
        "/api/v1",
        "/api/v1/",
        "/api/v1/billing",
        "/api/v1/billing/",
        "/api/v1/internal/v1/tokens/check",
        "/internal/v1/tokens/check",
        "/internal/v1/orders/ord_1/refunds",
        "/api/v1/internal/v1/orders/ord_1/refunds",
        "/api/v1/users/me/",
        "/api/v1/billing/../users/me",
        "/api/v1/billing/%2e%2e/auth/login",
        "/api/v1/billing/a%2Fb",
        "/api/v1/billing/.hidden",
        "/api/v1/billing/anything",
        "/api/v1/billing/invoices/",
        "/api/v1/billing/invoices/in_1/lines",
        "/webhooks/stripe/extra",
    ],
)
def test_paths_outside_the_table_are_not_found(path: str) -> None:
    with pytest.raises(NotFoundError):
        match_route("GET", path)


def test_wrong_method_is_refused_with_allow_header() -> None:
    with pytest.raises(MethodNotAllowedException) as raised:
        match_route("DELETE", "/api/v1/users/me")
    assert raised.value.headers == {"Allow": "GET, HEAD, OPTIONS"}


def test_routes_without_token_are_only_the_public_ones() -> None:
    public = {route.path for route in ROUTES if not route.needs_token}
    assert public == {
        "/api/v1/auth/register",
        "/api/v1/auth/login",
        "/api/v1/auth/jwks.json",
        "/api/v1/products",
        "/webhooks/stripe",
    }
