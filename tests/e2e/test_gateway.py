"""The gateway in front of the real auth service and the echo upstream (standing in for
facturation), all real processes speaking HTTP on loopback ports."""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator

import httpx

from shared import INTERNAL_TOKEN_HEADER, PROBLEM_MEDIA_TYPE, REQUEST_ID_HEADER
from tests.e2e.conftest import (
    MAX_BODY_BYTES,
    User,
    echo_saw,
    header_values,
    headers_with_id,
    new_user,
    request_id,
)
from tests.support.stack import Stack


async def test_register_login_and_me_go_to_auth(client: httpx.AsyncClient) -> None:
    user = await new_user(client)
    me = await client.get("/api/v1/users/me", headers=user.bearer)
    assert me.status_code == 200
    assert me.json()["id"] == user.id
    assert me.json()["email"] == user.email


async def test_token_route_forwards_verified_identity_without_the_api_prefix(
    stack: Stack, client: httpx.AsyncClient, user: User
) -> None:
    rid = request_id()
    response = await client.get(
        "/api/v1/billing/invoices?page=2", headers=headers_with_id(rid, **user.bearer)
    )
    assert response.status_code == 200
    assert response.headers[REQUEST_ID_HEADER] == rid
    (echo,) = await echo_saw(stack, rid)
    assert echo["method"] == "GET"
    assert echo["path"] == "/billing/invoices"
    assert echo["query"] == "page=2"
    assert header_values(echo, "x-user-id") == [user.id]
    assert header_values(echo, "x-user-email") == [user.email]
    assert header_values(echo, INTERNAL_TOKEN_HEADER) == [stack.internal_token]
    assert header_values(echo, "x-forwarded-for") == ["127.0.0.1"]


async def test_public_route_is_forwarded_without_identity(
    stack: Stack, client: httpx.AsyncClient
) -> None:
    rid = request_id()
    response = await client.get("/api/v1/products", headers=headers_with_id(rid))
    assert response.status_code == 200
    (echo,) = await echo_saw(stack, rid)
    assert echo["path"] == "/products"
    assert header_values(echo, "x-user-id") == []
    assert header_values(echo, INTERNAL_TOKEN_HEADER) == [stack.internal_token]


async def test_hop_by_hop_headers_do_not_reach_the_upstream(
    stack: Stack, client: httpx.AsyncClient
) -> None:
    rid = request_id()
    response = await client.get(
        "/api/v1/products",
        headers=headers_with_id(
            rid,
            Connection="keep-alive, X-Private-Hop",
            **{"X-Private-Hop": "1", "Keep-Alive": "timeout=5", "Proxy-Authorization": "Basic x"},
        ),
    )
    assert response.status_code == 200
    (echo,) = await echo_saw(stack, rid)
    names = {name for name, _ in echo["headers"]}
    assert not names & {"x-private-hop", "keep-alive", "proxy-authorization", "connection"}


async def test_chunked_request_body_is_streamed_intact(
    stack: Stack, client: httpx.AsyncClient, user: User
) -> None:
    piece = bytes(range(256)) * 256
    rid = request_id()

    async def body() -> AsyncIterator[bytes]:
        for _ in range(3):
            yield piece

    response = await client.post(
        "/api/v1/basket/validate", content=body(), headers=headers_with_id(rid, **user.bearer)
    )
    assert response.status_code == 200
    (echo,) = await echo_saw(stack, rid)
    assert echo["body_length"] == 3 * len(piece)
    assert echo["body_sha256"] == hashlib.sha256(piece * 3).hexdigest()


async def test_chunked_response_is_streamed_intact(client: httpx.AsyncClient) -> None:
    response = await client.get("/api/v1/products?chunks=7")
    assert response.status_code == 200
    assert response.json()["path"] == "/products"


async def test_webhook_passes_byte_for_byte_without_token(
    stack: Stack, client: httpx.AsyncClient
) -> None:
    payload = b'{"id": "evt_1", "object": "event"}\r\n' + bytes(range(256)) + b"\x00\xff  \n"
    signature = "t=1700000000,v1=" + "ab" * 32 + ",v0=deadbeef"
    rid = request_id()
    response = await client.post(
        "/webhooks/stripe",
        content=payload,
        headers=headers_with_id(
            rid, **{"Stripe-Signature": signature, "Content-Type": "application/json"}
        ),
    )
    assert response.status_code == 200
    (echo,) = await echo_saw(stack, rid)
    assert echo["path"] == "/webhooks/stripe"
    assert echo["body_sha256"] == hashlib.sha256(payload).hexdigest()
    assert echo["body_length"] == len(payload)
    assert header_values(echo, "stripe-signature") == [signature]
    assert header_values(echo, "x-user-id") == []


async def test_body_over_the_limit_is_413_and_not_forwarded(
    stack: Stack, client: httpx.AsyncClient
) -> None:
    rid = request_id()
    response = await client.post(
        "/webhooks/stripe", content=b"x" * (MAX_BODY_BYTES + 1), headers=headers_with_id(rid)
    )
    assert response.status_code == 413
    assert response.headers["content-type"] == PROBLEM_MEDIA_TYPE
    assert response.json()["request_id"] == rid
    assert await echo_saw(stack, rid) == []


async def test_chunked_body_over_the_limit_is_413(client: httpx.AsyncClient) -> None:
    async def body() -> AsyncIterator[bytes]:
        for _ in range(5):
            yield b"y" * (MAX_BODY_BYTES // 4)

    response = await client.post("/webhooks/stripe", content=body())
    assert response.status_code == 413
    assert response.headers["content-type"] == PROBLEM_MEDIA_TYPE


async def test_unknown_path_is_404_and_wrong_method_is_405(client: httpx.AsyncClient) -> None:
    missing = await client.get("/api/v1/nothing-here", headers={REQUEST_ID_HEADER: "rid-404"})
    assert missing.status_code == 404
    assert missing.headers["content-type"] == PROBLEM_MEDIA_TYPE
    assert missing.json()["request_id"] == "rid-404"
    wrong = await client.delete("/api/v1/products")
    assert wrong.status_code == 405
    assert wrong.headers["content-type"] == PROBLEM_MEDIA_TYPE
    assert "GET" in wrong.headers["allow"]


async def test_slow_upstream_is_504_problem(client: httpx.AsyncClient) -> None:
    response = await client.get("/api/v1/products?sleep=6", headers={REQUEST_ID_HEADER: "rid-504"})
    assert response.status_code == 504
    assert response.headers["content-type"] == PROBLEM_MEDIA_TYPE
    assert response.json()["request_id"] == "rid-504"


async def test_upstream_cookie_is_not_replayed_to_the_next_caller(
    stack: Stack, client: httpx.AsyncClient
) -> None:
    first = await client.get("/api/v1/products?set_cookie=1")
    assert "echo_session" in first.headers["set-cookie"]
    rid = request_id()
    async with httpx.AsyncClient(base_url=stack.url) as stranger:
        await stranger.get("/api/v1/products", headers=headers_with_id(rid))
    (echo,) = await echo_saw(stack, rid)
    assert header_values(echo, "cookie") == []


async def test_readyz_checks_auth_and_facturation(client: httpx.AsyncClient) -> None:
    response = await client.get("/readyz")
    assert response.status_code == 200
    assert response.json()["checks"] == {"auth": "ok", "facturation": "ok"}


async def test_cors_preflight_answers_allowlisted_origin_only(client: httpx.AsyncClient) -> None:
    preflight = {"Access-Control-Request-Method": "POST"}
    allowed = await client.options(
        "/api/v1/basket/validate", headers={"Origin": "http://localhost:8000", **preflight}
    )
    assert allowed.status_code == 204
    assert allowed.headers["access-control-allow-origin"] == "http://localhost:8000"
    refused = await client.options(
        "/api/v1/basket/validate", headers={"Origin": "https://evil.example", **preflight}
    )
    assert "access-control-allow-origin" not in refused.headers


async def test_logout_through_the_gateway_drops_its_cached_decision(
    client: httpx.AsyncClient, user: User
) -> None:
    assert (await client.get("/api/v1/users/me", headers=user.bearer)).status_code == 200
    assert (await client.post("/api/v1/auth/logout", headers=user.bearer)).status_code == 204
    again = await client.get("/api/v1/users/me", headers=user.bearer)
    assert again.status_code == 401
