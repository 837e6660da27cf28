"""The assembled app in-process, with private services that are not there."""

from __future__ import annotations

import json
from pathlib import Path

from litestar.testing import AsyncTestClient

from gateway.app import create_app
from gateway.settings import GatewaySettings
from shared import PROBLEM_MEDIA_TYPE, REQUEST_ID_HEADER
from tests.support.processes import free_port


def settings(**changes: object) -> GatewaySettings:
    nowhere = f"http://127.0.0.1:{free_port()}"
    values: dict[str, object] = {
        "internal_token": "internal",
        "auth_url": nowhere,
        "facturation_url": nowhere,
        "gateway_connect_timeout_seconds": 1.0,
        "gateway_auth_timeout_seconds": 1.0,
        "gateway_max_body_bytes": 100,
    }
    values.update(changes)
    return GatewaySettings(**values)  # type: ignore[arg-type]


async def test_public_route_to_a_refusing_upstream_is_502_problem() -> None:
    async with AsyncTestClient(create_app(settings())) as client:
        response = await client.get("/api/v1/products", headers={REQUEST_ID_HEADER: "rid-1"})
    assert response.status_code == 502
    assert response.headers["content-type"] == PROBLEM_MEDIA_TYPE
    body = response.json()
    assert body["request_id"] == "rid-1"
    assert body["instance"] == "/api/v1/products"


async def test_token_route_with_auth_unreachable_is_503() -> None:
    async with AsyncTestClient(create_app(settings())) as client:
        response = await client.get("/api/v1/users/me", headers={"Authorization": "Bearer a.b.c"})
    assert response.status_code == 503
    assert response.headers["content-type"] == PROBLEM_MEDIA_TYPE


async def test_declared_body_over_the_limit_is_413_before_any_upstream_call() -> None:
    async with AsyncTestClient(create_app(settings())) as client:
        response = await client.post("/webhooks/stripe", content=b"x" * 101)
    assert response.status_code == 413
    assert response.headers["content-type"] == PROBLEM_MEDIA_TYPE


async def test_readyz_fails_when_upstreams_are_down() -> None:
    async with AsyncTestClient(create_app(settings())) as client:
        response = await client.get("/readyz")
    assert response.status_code == 503
    assert set(response.json()["checks"]) == {"auth", "facturation"}


async def test_spa_dir_is_served_at_the_root_next_to_the_api(tmp_path: Path) -> None:
    (tmp_path / "index.html").write_text("<h1>shop</h1>")
    (tmp_path / "app.js").write_text("console.log(1)")
    async with AsyncTestClient(create_app(settings(gateway_spa_dir=str(tmp_path)))) as client:
        index = await client.get("/")
        script = await client.get("/app.js")
        health = await client.get("/healthz")
        api = await client.get("/api/v1/nothing")
    assert index.status_code == 200
    assert "<h1>shop</h1>" in index.text
    assert script.text == "console.log(1)"
    assert health.status_code == 200
    assert api.status_code == 404
    assert api.headers["content-type"] == PROBLEM_MEDIA_TYPE


async def test_spa_config_names_the_configured_stripe_js_and_publishable_key(
    tmp_path: Path,
) -> None:
    (tmp_path / "config.js").write_text("window.FACTURATION_CONFIG = {stale: true};")
    configured = settings(
        gateway_spa_dir=str(tmp_path),
        stripe_js_url="http://127.0.0.1:12111/v3/",
        stripe_publishable_key="pk_test_abc",
    )
    async with AsyncTestClient(create_app(configured)) as client:
        response = await client.get("/config.js")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/javascript")
    assert response.headers["cache-control"] == "no-store"
    prefix, _, literal = response.text.partition(" = ")
    assert prefix == "window.FACTURATION_CONFIG"
    assert json.loads(literal.rstrip().rstrip(";")) == {
        "apiBase": "/api/v1",
        "stripeJsUrl": "http://127.0.0.1:12111/v3/",
        "stripePublishableKey": "pk_test_abc",
    }


async def test_spa_config_defaults_to_stripes_own_stripe_js(tmp_path: Path) -> None:
    async with AsyncTestClient(create_app(settings(gateway_spa_dir=str(tmp_path)))) as client:
        response = await client.get("/config.js")
    assert '"stripeJsUrl":"https://js.stripe.com/v3/"' in response.text


async def test_without_spa_dir_the_root_is_404() -> None:
    async with AsyncTestClient(create_app(settings())) as client:
        response = await client.get("/")
    assert response.status_code == 404


async def test_both_content_length_and_chunked_is_400_and_not_forwarded() -> None:
    async with AsyncTestClient(create_app(settings())) as client:
        response = await client.post(
            "/webhooks/stripe",
            content=b"5\r\nhello\r\n0\r\n\r\n",
            headers={"Content-Length": "14", "Transfer-Encoding": "chunked"},
        )
    assert response.status_code == 400
    assert response.headers["content-type"] == PROBLEM_MEDIA_TYPE
