from __future__ import annotations

from typing import Any

import pytest
from litestar import Litestar, get
from litestar.di import NamedDependency, Provide
from litestar.testing import AsyncTestClient

from shared import (
    INTERNAL_TOKEN_HEADER,
    PROBLEM_MEDIA_TYPE,
    USER_EMAIL_HEADER,
    USER_ID_HEADER,
    Identity,
    create_service_app,
    provide_identity,
)


@get("/whoami", dependencies={"identity": Provide(provide_identity)})
async def whoami(identity: NamedDependency[Identity]) -> dict[str, Any]:
    return {"user_id": identity.user_id, "email": identity.email}


@pytest.fixture
def app() -> Litestar:
    return create_service_app(service="example", route_handlers=[whoami], internal_token="internal")


async def test_the_identity_the_gateway_set_is_read_behind_the_internal_credential(
    app: Litestar,
) -> None:
    headers = {INTERNAL_TOKEN_HEADER: "internal", USER_ID_HEADER: "u-1", USER_EMAIL_HEADER: "u@x"}
    async with AsyncTestClient(app) as client:
        response = await client.get("/whoami", headers=headers)
    assert response.json() == {"user_id": "u-1", "email": "u@x"}


@pytest.mark.parametrize("user_id", [None, "", "a b", "a" * 65, "../u", "u;1"])
async def test_a_missing_or_malformed_user_id_is_401(app: Litestar, user_id: str | None) -> None:
    headers = {INTERNAL_TOKEN_HEADER: "internal"}
    if user_id is not None:
        headers[USER_ID_HEADER] = user_id
    async with AsyncTestClient(app) as client:
        response = await client.get("/whoami", headers=headers)
    assert response.status_code == 401
    assert response.headers["content-type"] == PROBLEM_MEDIA_TYPE


async def test_without_the_internal_credential_the_identity_is_never_read(app: Litestar) -> None:
    async with AsyncTestClient(app) as client:
        response = await client.get("/whoami", headers={USER_ID_HEADER: "u-1"})
    assert response.status_code == 401
    assert "u-1" not in response.text
