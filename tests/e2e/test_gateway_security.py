"""What an attacker can try at the edge. Each test asserts the status, that the problem body
leaks nothing, and that the private service saw nothing (or only what the gateway vouches for)."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import os
import signal
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import httpx
import pytest
import pytest_asyncio
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from shared import INTERNAL_TOKEN_HEADER, PROBLEM_MEDIA_TYPE
from tests.e2e.conftest import (
    AUTH_ENV,
    TokenForge,
    User,
    _b64,
    echo_saw,
    forge_for,
    header_values,
    headers_with_id,
    logout_at_auth,
    new_user,
    request_id,
)
from tests.support.processes import free_port
from tests.support.stack import Stack, another_gateway, start_stack


def _hs256_with_public_key(forge: TokenForge) -> str:
    """The classic algorithm confusion: HMAC keyed with the (public) verification key's PEM."""
    private = serialization.load_pem_private_key(forge.key.encode(), password=None)
    public_pem = private.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    header = _b64(json.dumps({"alg": "HS256", "typ": "JWT", "kid": forge.kid}).encode())
    payload = _b64(json.dumps(forge.claims()).encode())
    digest = hmac.new(public_pem, f"{header}.{payload}".encode(), hashlib.sha256).digest()
    return f"{header}.{payload}.{_b64(digest)}"


FORGED: dict[str, Callable[[TokenForge], str]] = {
    "alg_none": lambda forge: forge.unsigned(),
    "wrong_key": lambda forge: forge.signed(key=Ed25519PrivateKey.generate()),
    "expired": lambda forge: forge.signed(exp=int(time.time()) - 60, iat=int(time.time()) - 960),
    "wrong_audience": lambda forge: forge.signed(aud="someone-else"),
    "wrong_issuer": lambda forge: forge.signed(iss="https://evil.example"),
    "hs256_confusion": _hs256_with_public_key,
}


async def assert_refused_unseen(
    stack: Stack, response: httpx.Response, rid: str, secret: str | None = None
) -> None:
    assert response.status_code == 401
    assert response.headers["content-type"] == PROBLEM_MEDIA_TYPE
    assert response.json()["request_id"] == rid
    if secret:
        assert secret not in response.text
    assert await echo_saw(stack, rid) == []


@pytest.mark.parametrize("attack", list(FORGED))
async def test_forged_token_is_401_and_never_forwarded(
    stack: Stack, client: httpx.AsyncClient, user: User, attack: str
) -> None:
    token = FORGED[attack](await forge_for(stack, client, user))
    rid = request_id()
    response = await client.post(
        "/api/v1/billing/customer",
        headers=headers_with_id(rid, Authorization=f"Bearer {token}"),
    )
    await assert_refused_unseen(stack, response, rid, token)


@pytest.mark.parametrize(
    "authorization",
    [
        "",
        "Bearer",
        "Bearer a.b",
        "Basic dXNlcjpwYXNz",
        "Bearer not-a-jwt",
        "Bearer a.b.c.d",
        "Bearer a.b.c extra",
        "Bearer " + "a" * 5000 + ".b.c",
    ],
)
async def test_malformed_authorization_is_401_and_never_forwarded(
    stack: Stack, client: httpx.AsyncClient, authorization: str
) -> None:
    rid = request_id()
    response = await client.get(
        "/api/v1/billing/invoices", headers=headers_with_id(rid, Authorization=authorization)
    )
    await assert_refused_unseen(stack, response, rid)


async def test_two_authorization_headers_are_refused(
    stack: Stack, client: httpx.AsyncClient, user: User
) -> None:
    rid = request_id()
    response = await client.get(
        "/api/v1/billing/invoices",
        headers=[
            ("X-Request-ID", rid),
            ("Authorization", f"Bearer {user.token}"),
            ("Authorization", f"Bearer {user.token}"),
        ],
    )
    await assert_refused_unseen(stack, response, rid)


async def test_spoofed_identity_and_credential_never_reach_the_upstream(
    stack: Stack, client: httpx.AsyncClient, user: User
) -> None:
    rid = request_id()
    response = await client.get(
        "/api/v1/billing/invoices",
        headers=headers_with_id(
            rid,
            **user.bearer,
            **{
                "X-User-Id": "00000000-0000-0000-0000-000000000000",
                "X-User-Email": "admin@example.com",
                "X-User-Role": "admin",
                "X-Internal-Token": "guessed",
                "X-Forwarded-For": "6.6.6.6",
                "X-Forwarded-Host": "evil.example",
            },
        ),
    )
    assert response.status_code == 200
    (echo,) = await echo_saw(stack, rid)
    assert header_values(echo, "x-user-id") == [user.id]
    assert header_values(echo, "x-user-email") == [user.email]
    assert header_values(echo, "x-user-role") == []
    assert header_values(echo, INTERNAL_TOKEN_HEADER) == [stack.internal_token]
    assert header_values(echo, "x-forwarded-for") == ["127.0.0.1"]
    assert header_values(echo, "x-forwarded-host") == []


async def test_behind_a_trusted_proxy_the_clients_address_is_forwarded(
    stack: Stack, user: User, tmp_path: Path
) -> None:
    # The gateway's socket peer (127.0.0.1 here) stands for an ingress controller.
    rid = request_id()
    async with (
        another_gateway(stack, tmp_path, {"FORWARDED_ALLOW_IPS": "127.0.0.1"}) as behind_proxy,
        httpx.AsyncClient(base_url=behind_proxy.url, timeout=10) as http,
    ):
        response = await http.get(
            "/api/v1/billing/invoices",
            headers=headers_with_id(rid, **user.bearer, **{"X-Forwarded-For": "198.51.100.4"}),
        )
    assert response.status_code == 200
    (echo,) = await echo_saw(stack, rid)
    assert header_values(echo, "x-forwarded-for") == ["198.51.100.4"]


async def test_spoofed_identity_on_a_public_route_is_dropped(
    stack: Stack, client: httpx.AsyncClient
) -> None:
    rid = request_id()
    response = await client.get(
        "/api/v1/products", headers=headers_with_id(rid, **{"X-User-Id": "someone"})
    )
    assert response.status_code == 200
    (echo,) = await echo_saw(stack, rid)
    assert header_values(echo, "x-user-id") == []


async def test_private_auth_routes_refuse_callers_without_the_internal_credential(
    stack: Stack, user: User
) -> None:
    check = f"{stack.auth.url}/internal/v1/tokens/check"
    async with httpx.AsyncClient(timeout=5) as http:
        missing = await http.get(check, headers=user.bearer)
        wrong = await http.get(check, headers={**user.bearer, INTERNAL_TOKEN_HEADER: "guessed"})
        lookup = await http.get(f"{stack.auth.url}/internal/v1/users/{user.id}")
        right = await http.get(
            check, headers={**user.bearer, INTERNAL_TOKEN_HEADER: stack.internal_token}
        )
    for refused in (missing, wrong, lookup):
        assert refused.status_code == 401
        assert refused.headers["content-type"] == PROBLEM_MEDIA_TYPE
        assert user.email not in refused.text
        assert "x-user-id" not in refused.headers
    assert right.status_code == 200
    assert right.headers["x-user-id"] == user.id


@pytest.mark.parametrize(
    "path", ["/internal/v1/tokens/check", "/api/v1/internal/v1/tokens/check", "/api/v1/../internal"]
)
async def test_private_routes_are_not_reachable_through_the_gateway(
    client: httpx.AsyncClient, user: User, path: str
) -> None:
    response = await client.get(path, headers=user.bearer)
    assert response.status_code == 404


async def test_encoded_dot_segments_are_not_forwarded(
    stack: Stack, client: httpx.AsyncClient
) -> None:
    rid = request_id()
    response = await client.get(
        "/api/v1/billing/%2e%2e/users/me", headers=headers_with_id(rid, Authorization="Bearer x")
    )
    assert response.status_code in (401, 404)
    assert await echo_saw(stack, rid) == []


# --- revocation: a logged-out token stops working within the cache bound -------------------


@pytest_asyncio.fixture
async def uncached_stack(stack: Stack, tmp_path: Path) -> AsyncIterator[Stack]:
    async with another_gateway(stack, tmp_path, {"GATEWAY_TOKEN_CACHE_SECONDS": "0"}) as running:
        yield running


CACHE_SECONDS = 3.0


@pytest_asyncio.fixture
async def short_cache_stack(stack: Stack, tmp_path: Path) -> AsyncIterator[Stack]:
    env = {"GATEWAY_TOKEN_CACHE_SECONDS": str(CACHE_SECONDS)}
    async with another_gateway(stack, tmp_path, env) as running:
        yield running


async def test_revoked_token_is_refused_at_once_without_cache(uncached_stack: Stack) -> None:
    async with httpx.AsyncClient(base_url=uncached_stack.url, timeout=10) as http:
        user = await new_user(http)
        assert (await http.get("/api/v1/users/me", headers=user.bearer)).status_code == 200
        await logout_at_auth(uncached_stack, user.token)
        rid = request_id()
        response = await http.get(
            "/api/v1/billing/invoices", headers=headers_with_id(rid, **user.bearer)
        )
    await assert_refused_unseen(uncached_stack, response, rid, user.token)


async def test_revoked_token_is_refused_once_the_cache_bound_passes(
    short_cache_stack: Stack,
) -> None:
    async with httpx.AsyncClient(base_url=short_cache_stack.url, timeout=10) as http:
        user = await new_user(http)
        # The decision is cached somewhere between these two instants.
        asked_at = time.monotonic()
        assert (await http.get("/api/v1/users/me", headers=user.bearer)).status_code == 200
        answered_at = time.monotonic()
        await logout_at_auth(short_cache_stack, user.token)
        if time.monotonic() - asked_at < CACHE_SECONDS - 0.5:
            # Still inside the bound: the cached decision is what makes the gateway fast.
            still = await http.get("/api/v1/users/me", headers=user.bearer)
            assert still.status_code == 200
        await asyncio.sleep(max(0.0, answered_at + CACHE_SECONDS + 0.1 - time.monotonic()))
        rid = request_id()
        response = await http.get(
            "/api/v1/billing/invoices", headers=headers_with_id(rid, **user.bearer)
        )
    await assert_refused_unseen(short_cache_stack, response, rid, user.token)


# --- failure modes: fail closed, never forward -----------------------------------------------


@pytest_asyncio.fixture
async def fragile_stack(tmp_path: Path) -> AsyncIterator[Stack]:
    async with start_stack(
        tmp_path,
        auth_env=AUTH_ENV,
        gateway_env={"GATEWAY_TOKEN_CACHE_SECONDS": "0", "GATEWAY_AUTH_TIMEOUT_SECONDS": "1"},
    ) as running:
        yield running


async def assert_unavailable_unseen(stack: Stack, response: httpx.Response, rid: str) -> None:
    assert response.status_code == 503
    assert response.headers["content-type"] == PROBLEM_MEDIA_TYPE
    assert response.json()["request_id"] == rid
    assert await echo_saw(stack, rid) == []


async def test_auth_slow_or_stopped_is_503_and_nothing_is_forwarded(fragile_stack: Stack) -> None:
    stack = fragile_stack
    assert stack.auth.process is not None
    async with httpx.AsyncClient(base_url=stack.url, timeout=10) as http:
        user = await new_user(http)

        os.killpg(stack.auth.process.pid, signal.SIGSTOP)  # auth hangs: accepts, never answers
        try:
            rid = request_id()
            slow = await http.get(
                "/api/v1/billing/invoices", headers=headers_with_id(rid, **user.bearer)
            )
        finally:
            os.killpg(stack.auth.process.pid, signal.SIGCONT)
        await assert_unavailable_unseen(stack, slow, rid)
        assert (await http.get("/api/v1/users/me", headers=user.bearer)).status_code == 200

        await asyncio.to_thread(stack.auth.stop)
        rid = request_id()
        stopped = await http.get(
            "/api/v1/billing/invoices", headers=headers_with_id(rid, **user.bearer)
        )
        await assert_unavailable_unseen(stack, stopped, rid)
        public = await http.get("/api/v1/products")
        assert public.status_code == 200
        ready = await http.get("/readyz")
        assert ready.status_code == 503


async def test_upstream_down_is_502_problem(stack: Stack, tmp_path: Path) -> None:
    dead = {"FACTURATION_URL": f"http://127.0.0.1:{free_port()}"}
    async with (
        another_gateway(stack, tmp_path, dead) as broken,
        httpx.AsyncClient(base_url=broken.url, timeout=10) as http,
    ):
        response = await http.get("/api/v1/products", headers={"X-Request-ID": "rid-502"})
    assert response.status_code == 502
    assert response.headers["content-type"] == PROBLEM_MEDIA_TYPE
    assert response.json()["request_id"] == "rid-502"
