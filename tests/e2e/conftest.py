"""Shared pieces of the end-to-end tests: the running stacks and a few calls every test makes.

The main stack is started once per module (starting processes costs seconds); tests that stop a
service or need other settings start their own.
"""

from __future__ import annotations

import base64
import json
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import httpx
import jwt
import pytest
import pytest_asyncio

from shared import INTERNAL_TOKEN_HEADER, REQUEST_ID_HEADER
from tests.support.stack import JWT_AUDIENCE, JWT_ISSUER, Stack, start_stack

# Every e2e test registers and logs in from 127.0.0.1; auth's per-address limits would trip.
AUTH_ENV = {"LOGIN_MAX_ATTEMPTS_PER_ADDRESS": "0", "REGISTER_MAX_ATTEMPTS_PER_ADDRESS": "0"}
MAX_BODY_BYTES = 262_144
UPSTREAM_TIMEOUT_SECONDS = 4.0


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "/e2e/" in str(item.path):
            item.add_marker(pytest.mark.e2e)


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def stack(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Stack]:
    """Auth, the echo upstream as facturation, and the gateway with a 30 s decision cache."""
    async with start_stack(
        tmp_path_factory.mktemp("stack"),
        auth_env=AUTH_ENV,
        gateway_env={
            "GATEWAY_MAX_BODY_BYTES": str(MAX_BODY_BYTES),
            "GATEWAY_UPSTREAM_TIMEOUT_SECONDS": str(UPSTREAM_TIMEOUT_SECONDS),
            "GATEWAY_TOKEN_CACHE_SECONDS": "30",
        },
    ) as running:
        yield running


@pytest_asyncio.fixture
async def client(stack: Stack) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=stack.url, timeout=10) as http:
        yield http


@dataclass
class User:
    id: str
    email: str
    password: str
    token: str

    @property
    def bearer(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}


async def new_user(http: httpx.AsyncClient) -> User:
    """A registered, logged-in user, through the gateway."""
    email = f"user-{uuid.uuid4().hex[:12]}@example.com"
    password = "correct-horse-battery"
    registered = await http.post(
        "/api/v1/auth/register", json={"email": email, "password": password, "name": "E2E"}
    )
    assert registered.status_code == 201, registered.text
    login = await http.post("/api/v1/auth/login", json={"email": email, "password": password})
    assert login.status_code == 200, login.text
    return User(registered.json()["id"], email, password, login.json()["access_token"])


@pytest_asyncio.fixture
async def user(client: httpx.AsyncClient) -> User:
    return await new_user(client)


def request_id() -> str:
    return f"e2e-{uuid.uuid4().hex}"


async def echo_saw(stack: Stack, rid: str) -> list[dict[str, Any]]:
    """What the echo upstream received for one request id (none: the request never arrived)."""
    assert stack.facturation is not None
    async with httpx.AsyncClient(timeout=5) as http:
        seen = (await http.get(f"{stack.facturation.url}/__echo/requests")).json()
    return [entry for entry in seen if dict(entry["headers"]).get("x-request-id") == rid]


def header_values(echo: dict[str, Any], name: str) -> list[str]:
    return [value for key, value in echo["headers"] if key == name.lower()]


async def logout_at_auth(stack: Stack, token: str) -> None:
    """Revoke a token as another gateway replica would, so this gateway's cache is not told."""
    async with httpx.AsyncClient(timeout=5) as http:
        response = await http.post(
            f"{stack.auth.url}/auth/logout",
            headers={
                "Authorization": f"Bearer {token}",
                INTERNAL_TOKEN_HEADER: stack.internal_token,
            },
        )
    assert response.status_code == 204, response.text


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


class TokenForge:
    """Tokens an attacker could make, each wrong in exactly one way."""

    def __init__(self, private_key_pem: str, kid: str, user: User) -> None:
        self.key = private_key_pem
        self.kid = kid
        self.user = user

    def claims(self, **changes: Any) -> dict[str, Any]:
        now = int(time.time())
        claims = {
            "sub": self.user.id,
            "email": self.user.email,
            "iss": JWT_ISSUER,
            "aud": JWT_AUDIENCE,
            "iat": now,
            "exp": now + 600,
            "jti": uuid.uuid4().hex,
        }
        claims.update(changes)
        return claims

    def signed(self, key: Any = None, **changes: Any) -> str:
        return jwt.encode(
            self.claims(**changes), key or self.key, algorithm="EdDSA", headers={"kid": self.kid}
        )

    def unsigned(self) -> str:
        header = {"alg": "none", "typ": "JWT", "kid": self.kid}
        return f"{_b64(json.dumps(header).encode())}.{_b64(json.dumps(self.claims()).encode())}."


async def forge_for(stack: Stack, http: httpx.AsyncClient, user: User) -> TokenForge:
    jwks = (await http.get("/api/v1/auth/jwks.json")).json()
    return TokenForge(stack.jwt_private_key, jwks["keys"][0]["kid"], user)


def headers_with_id(rid: str, **headers: str) -> dict[str, str]:
    return {REQUEST_ID_HEADER: rid, **headers}
