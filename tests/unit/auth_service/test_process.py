"""``python -m auth_service migrate`` and ``serve`` as real processes, spoken to over HTTP."""

from __future__ import annotations

import asyncio
from pathlib import Path

import httpx
import pytest

from shared import INTERNAL_TOKEN_HEADER
from tests.support.processes import ServiceProcess

pytestmark = pytest.mark.e2e


async def test_migrate_then_serve_register_login_and_check(
    database_url: str, private_key_pem: str, tmp_path: Path
) -> None:
    service = ServiceProcess(
        "auth_service",
        {
            "AUTH_DATABASE_URL": database_url,
            "INTERNAL_TOKEN": "process-token",
            "JWT_PRIVATE_KEY": private_key_pem,
            "ARGON2_MEMORY_KIB": "8192",
            "ARGON2_TIME_COST": "1",
            "ARGON2_PARALLELISM": "1",
        },
        tmp_path,
    )
    await service.migrate()
    await asyncio.to_thread(service.start)
    try:
        async with httpx.AsyncClient(
            base_url=service.url, headers={INTERNAL_TOKEN_HEADER: "process-token"}
        ) as client:
            registered = await client.post(
                "/auth/register",
                json={"email": "ada@example.com", "password": "long enough!", "name": "Ada"},
            )
            assert registered.status_code == 201
            token = (
                await client.post(
                    "/auth/login", json={"email": "ada@example.com", "password": "long enough!"}
                )
            ).json()["access_token"]
            check = await client.get(
                "/internal/v1/tokens/check", headers={"Authorization": f"Bearer {token}"}
            )
            assert check.status_code == 200
            assert check.headers["x-user-id"] == registered.json()["id"]
            ready = await client.get("/readyz")
            assert ready.status_code == 200
    finally:
        await asyncio.to_thread(service.stop)
    assert "long enough!" not in service.logs()
    assert private_key_pem.splitlines()[1] not in service.logs()
