from __future__ import annotations

import uuid
from typing import Any

from litestar.testing import AsyncTestClient

from shared import PROBLEM_MEDIA_TYPE, USER_ID_HEADER
from tests.unit.auth_service.conftest import access_token, register


async def test_logout_revokes_the_token_and_is_idempotent(client: AsyncTestClient[Any]) -> None:
    token = await access_token(client)
    bearer = {"Authorization": f"Bearer {token}"}
    assert (await client.post("/auth/logout", headers=bearer)).status_code == 204
    assert (await client.post("/auth/logout", headers=bearer)).status_code == 204
    check = await client.get("/internal/v1/tokens/check", headers=bearer)
    assert check.status_code == 401


async def test_logout_leaves_the_users_other_tokens_valid(client: AsyncTestClient[Any]) -> None:
    first = await access_token(client)
    second = await access_token(client)
    await client.post("/auth/logout", headers={"Authorization": f"Bearer {first}"})
    check = await client.get(
        "/internal/v1/tokens/check", headers={"Authorization": f"Bearer {second}"}
    )
    assert check.status_code == 200


async def test_logout_without_a_valid_token_is_refused(client: AsyncTestClient[Any]) -> None:
    assert (await client.post("/auth/logout")).status_code == 401
    response = await client.post("/auth/logout", headers={"Authorization": "Bearer a.b.c"})
    assert response.status_code == 401
    assert response.headers["content-type"] == PROBLEM_MEDIA_TYPE


async def test_me_answers_the_user_named_by_the_gateway(client: AsyncTestClient[Any]) -> None:
    user = (await register(client)).json()
    response = await client.get("/users/me", headers={USER_ID_HEADER: user["id"]})
    assert response.status_code == 200
    assert response.json() == user


async def test_me_without_an_identity_is_unauthorized(client: AsyncTestClient[Any]) -> None:
    response = await client.get("/users/me")
    assert response.status_code == 401
    assert response.headers["content-type"] == PROBLEM_MEDIA_TYPE


async def test_me_for_an_unknown_or_malformed_id_is_not_found(client: AsyncTestClient[Any]) -> None:
    for user_id in (str(uuid.uuid4()), "not-a-uuid"):
        response = await client.get("/users/me", headers={USER_ID_HEADER: user_id})
        assert response.status_code == 404


async def test_me_without_the_internal_credential_ignores_the_identity_header(
    client: AsyncTestClient[Any],
) -> None:
    user = (await register(client)).json()
    del client.headers["X-Internal-Token"]
    response = await client.get("/users/me", headers={USER_ID_HEADER: user["id"]})
    assert response.status_code == 401
    assert user["email"] not in response.text


async def test_jwks_publishes_the_public_key_only(client: AsyncTestClient[Any]) -> None:
    response = await client.get("/auth/jwks.json")
    assert response.status_code == 200
    assert (await client.get("/.well-known/jwks.json")).json() == response.json()
    [key] = response.json()["keys"]
    assert key.keys() == {"kty", "crv", "x", "kid", "alg", "use"}
    assert (key["kty"], key["crv"], key["alg"], key["use"]) == ("OKP", "Ed25519", "EdDSA", "sig")
