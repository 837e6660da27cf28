"""``Allow`` on a 405 and the answer to a plain OPTIONS name exactly the methods the route table
gives the path (issue 15, finding 9), without asking any private service."""

from __future__ import annotations

import pytest
from litestar.testing import AsyncTestClient

from gateway.app import create_app
from shared import PROBLEM_MEDIA_TYPE
from shared._middleware import PREFLIGHT_REFUSED
from tests.unit.gateway.test_app import settings


@pytest.mark.parametrize(
    ("path", "allow"),
    [
        ("/api/v1/billing/invoices", "GET, HEAD, OPTIONS"),
        ("/api/v1/billing/invoices/in_123", "GET, HEAD, OPTIONS"),
        ("/api/v1/billing/customer", "OPTIONS, POST"),
        ("/api/v1/billing/checkout-sessions/cs_1", "GET, HEAD, OPTIONS"),
        ("/api/v1/users/me/stripe-customer", "OPTIONS, PUT"),
        ("/webhooks/stripe", "OPTIONS, POST"),
    ],
)
async def test_a_plain_options_names_the_methods_of_the_route(path: str, allow: str) -> None:
    async with AsyncTestClient(create_app(settings())) as client:
        response = await client.options(path)

    assert response.status_code == 204
    assert response.headers["allow"] == allow
    assert response.content == b""


@pytest.mark.parametrize(
    ("method", "path", "allow"),
    [
        ("DELETE", "/api/v1/billing/invoices", "GET, HEAD, OPTIONS"),
        ("PATCH", "/api/v1/billing/customer", "OPTIONS, POST"),
        ("PUT", "/api/v1/billing/invoices/in_1", "GET, HEAD, OPTIONS"),
        ("GET", "/api/v1/auth/login", "OPTIONS, POST"),
    ],
)
async def test_a_wrong_method_is_a_405_problem_naming_only_the_routes_methods(
    method: str, path: str, allow: str
) -> None:
    async with AsyncTestClient(create_app(settings())) as client:
        response = await client.request(method, path)

    assert response.status_code == 405
    assert response.headers["content-type"] == PROBLEM_MEDIA_TYPE
    assert response.headers["allow"] == allow


@pytest.mark.parametrize(
    "path", ["/api/v1/billing/nothing-here", "/api/v1/billing/invoices/in_1/extra"]
)
async def test_options_on_a_path_outside_the_table_is_a_404(path: str) -> None:
    async with AsyncTestClient(create_app(settings())) as client:
        response = await client.options(path)

    assert response.status_code == 404
    assert response.headers["content-type"] == PROBLEM_MEDIA_TYPE


async def test_a_cors_preflight_is_still_answered_by_the_cors_policy() -> None:
    app = create_app(settings(cors_origins=["https://shop.example"]))
    async with AsyncTestClient(app) as client:
        response = await client.options(
            "/api/v1/billing/invoices",
            headers={
                "Origin": "https://shop.example",
                "Access-Control-Request-Method": "GET",
            },
        )

    assert response.status_code == 204
    assert response.headers["access-control-allow-origin"] == "https://shop.example"


@pytest.mark.parametrize(
    "asked",
    [
        {"Origin": "https://evil.example", "Access-Control-Request-Method": "GET"},
        {
            "Origin": "https://shop.example",
            "Access-Control-Request-Method": "GET",
            "Access-Control-Request-Headers": "X-Not-Allowed",
        },
    ],
    ids=["origin", "headers"],
)
async def test_a_refused_cors_preflight_is_a_400_problem(asked: dict[str, str]) -> None:
    app = create_app(settings(cors_origins=["https://shop.example"]))
    async with AsyncTestClient(app) as client:
        response = await client.options("/api/v1/billing/invoices", headers=asked)

    assert response.status_code == 400
    assert response.headers["content-type"] == PROBLEM_MEDIA_TYPE
    assert "access-control-allow-origin" not in response.headers
    assert response.json() == {
        "type": "about:blank",
        "title": "Bad Request",
        "status": 400,
        "detail": PREFLIGHT_REFUSED,
        "instance": "/api/v1/billing/invoices",
        "request_id": response.headers["x-request-id"],
    }
