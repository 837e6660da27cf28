"""The private services' OpenAPI documents, read in-process the way the gateway reads them."""

from __future__ import annotations

from typing import Any

from litestar import Litestar
from litestar.testing import AsyncTestClient

from shared import INTERNAL_TOKEN_HEADER


async def served_document(app: Litestar, internal_token: str) -> dict[str, Any]:
    async with AsyncTestClient(app) as client:
        response = await client.get(
            "/schema/openapi.json", headers={INTERNAL_TOKEN_HEADER: internal_token}
        )
    assert response.status_code == 200, response.text
    document: dict[str, Any] = response.json()
    return document


def operations(document: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Every operation by ``"METHOD /path"``."""
    return {
        f"{method.upper()} {path}": operation
        for path, item in document["paths"].items()
        for method, operation in item.items()
        if method in ("get", "put", "post", "delete", "patch")
    }
