"""The JWT key rotation of docs/operations.md, played as a rolling update plays it: auth pods of two
consecutive configurations run side by side on one database, and a token issued by either must
be accepted by both. Real auth processes, real HTTP."""

from __future__ import annotations

import asyncio
import secrets
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import httpx
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from shared import INTERNAL_TOKEN_HEADER
from tests.support.databases import migrated_database
from tests.support.processes import ROOT, ServiceProcess
from tests.support.stack import signing_key_pem

pytestmark = pytest.mark.e2e

PASSWORD = "correct-horse-battery"


def public_pem(private_pem: str) -> str:
    key = serialization.load_pem_private_key(private_pem.encode(), password=None)
    assert isinstance(key, Ed25519PrivateKey)
    return (
        key.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )


StartPod = Callable[[str, str], Awaitable[ServiceProcess]]


@pytest.fixture
async def start_pod(tmp_path: Path) -> AsyncIterator[tuple[StartPod, str, str]]:
    """Starts auth "pods" with a given (JWT_PRIVATE_KEY, JWT_PREVIOUS_PUBLIC_KEYS), one database;
    yields the starter, the internal token and a registered user's email."""
    token = secrets.token_urlsafe(24)
    pods: list[ServiceProcess] = []
    email = f"rotation-{uuid.uuid4().hex[:10]}@example.com"
    async with migrated_database("auth", ROOT / "auth_service" / "migrations", tmp_path) as url:

        async def start(private_key: str, previous_public_keys: str) -> ServiceProcess:
            pod = ServiceProcess(
                "auth_service",
                {
                    "AUTH_DATABASE_URL": url,
                    "INTERNAL_TOKEN": token,
                    "JWT_PRIVATE_KEY": private_key,
                    "JWT_PREVIOUS_PUBLIC_KEYS": previous_public_keys,
                    "LOGIN_MAX_ATTEMPTS_PER_ADDRESS": "0",
                    "LOG_LEVEL": "WARNING",
                },
                tmp_path,
            )
            pods.append(pod)
            await asyncio.to_thread(pod.start)
            return pod

        try:
            yield start, token, email
        finally:
            for pod in pods:
                await asyncio.to_thread(pod.stop)


async def _login(pod: ServiceProcess, token: str, email: str) -> str:
    credential = {INTERNAL_TOKEN_HEADER: token}
    async with httpx.AsyncClient(base_url=pod.url, timeout=10) as http:
        user = {"email": email, "password": PASSWORD, "name": "Rotation"}
        registered = await http.post("/auth/register", json=user, headers=credential)
        assert registered.status_code in (201, 409), registered.text
        login = await http.post(
            "/auth/login", json={"email": email, "password": PASSWORD}, headers=credential
        )
    assert login.status_code == 200, login.text
    access_token: str = login.json()["access_token"]
    return access_token


async def _accepts(pod: ServiceProcess, token: str, access_token: str) -> bool:
    async with httpx.AsyncClient(base_url=pod.url, timeout=10) as http:
        response = await http.get(
            "/internal/v1/tokens/check",
            headers={INTERNAL_TOKEN_HEADER: token, "Authorization": f"Bearer {access_token}"},
        )
    assert response.status_code in (200, 401), response.text
    return response.status_code == 200


async def _each_accepts_the_others_tokens(
    first: ServiceProcess, second: ServiceProcess, token: str, email: str
) -> bool:
    from_first = await _login(first, token, email)
    from_second = await _login(second, token, email)
    return all(
        [
            await _accepts(first, token, from_second),
            await _accepts(second, token, from_first),
        ]
    )


async def test_two_step_rotation_keeps_every_token_valid_while_pods_roll(
    start_pod: tuple[StartPod, str, str],
) -> None:
    start, token, email = start_pod
    old, new = signing_key_pem(), signing_key_pem()
    before, accept_new, sign_new, after = await asyncio.gather(
        start(old, ""),
        start(old, public_pem(new)),  # step 2 of docs/operations.md
        start(new, public_pem(old)),  # step 3
        start(new, ""),  # step 4, once old tokens have expired
    )

    assert await _each_accepts_the_others_tokens(before, accept_new, token, email)
    assert await _each_accepts_the_others_tokens(accept_new, sign_new, token, email)
    assert await _each_accepts_the_others_tokens(sign_new, after, token, email)
    # And the reason for step 4's wait: once the old key is dropped, its tokens are refused.
    assert not await _accepts(after, token, await _login(before, token, email))


async def test_swapping_the_key_in_one_step_would_log_users_out_during_the_rollout(
    start_pod: tuple[StartPod, str, str],
) -> None:
    start, token, email = start_pod
    old, new = signing_key_pem(), signing_key_pem()
    before, swapped = await asyncio.gather(start(old, ""), start(new, public_pem(old)))
    # The new pod accepts old tokens, but an old pod refuses the new pod's: hence step 2.
    assert await _accepts(swapped, token, await _login(before, token, email))
    assert not await _accepts(before, token, await _login(swapped, token, email))
