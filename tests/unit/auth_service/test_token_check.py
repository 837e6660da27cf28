"""The forward-auth check: every bad token is a 401 problem and never carries an identity."""

from __future__ import annotations

import time
from typing import Any

import httpx
import jwt
import msgspec
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from litestar.testing import AsyncTestClient

from auth_service import AuthSettings, create_app, generate_private_key_pem
from auth_service.tokens import Tokens
from shared import INTERNAL_TOKEN_HEADER, PROBLEM_MEDIA_TYPE, Database
from tests.support.databases import terminate_connections, using_postgres
from tests.unit.auth_service.conftest import INTERNAL_TOKEN, access_token
from tests.unit.auth_service.tokens_support import claims, kid_of, private_key, signed, unsigned

CHECK = "/internal/v1/tokens/check"


def assert_refused_without_identity(response: httpx.Response) -> None:
    assert response.status_code == 401
    assert response.headers["content-type"] == PROBLEM_MEDIA_TYPE
    assert "x-user-id" not in response.headers
    assert "x-user-email" not in response.headers
    body = response.json()
    assert body["status"] == 401
    assert "user_id" not in body
    assert "email" not in body


async def check(client: httpx.AsyncClient, token: str) -> httpx.Response:
    return await client.get(CHECK, headers={"Authorization": f"Bearer {token}"})


async def test_a_valid_token_answers_the_identity_in_headers_and_body(
    client: AsyncTestClient[Any],
) -> None:
    token = await access_token(client)
    me = (await client.get("/auth/jwks.json")).json()
    response = await check(client, token)
    assert response.status_code == 200
    body = response.json()
    payload = jwt.decode(token, options={"verify_signature": False})
    assert body == {
        "user_id": payload["sub"],
        "email": "ada@example.com",
        "exp": payload["exp"],
        "jti": payload["jti"],
    }
    assert response.headers["x-user-id"] == payload["sub"]
    assert response.headers["x-user-email"] == "ada@example.com"
    assert response.headers["cache-control"] == "no-store"
    assert me["keys"][0]["kid"] == jwt.get_unverified_header(token)["kid"]


async def test_the_scheme_is_case_insensitive(client: AsyncTestClient[Any]) -> None:
    token = await access_token(client)
    response = await client.get(CHECK, headers={"Authorization": f"bearer {token}"})
    assert response.status_code == 200


async def test_alg_none_is_refused(client: AsyncTestClient[Any], private_key_pem: str) -> None:
    kid = kid_of(private_key(private_key_pem))
    assert_refused_without_identity(await check(client, unsigned(claims(), kid, "c2ln")))
    assert_refused_without_identity(await check(client, unsigned(claims(), kid)))


async def test_a_token_signed_by_another_key_is_refused(
    client: AsyncTestClient[Any], private_key_pem: str
) -> None:
    stranger = Ed25519PrivateKey.generate()
    ours = kid_of(private_key(private_key_pem))
    # Claiming our kid, then with its own kid.
    assert_refused_without_identity(await check(client, signed(stranger, claims(), kid=ours)))
    assert_refused_without_identity(await check(client, signed(stranger, claims())))


async def test_an_hmac_token_keyed_with_our_public_key_is_refused(
    client: AsyncTestClient[Any], private_key_pem: str
) -> None:
    """The classic algorithm confusion: HS256 with the public key as the shared secret."""
    key = private_key(private_key_pem)
    public = key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
    token = jwt.encode(claims(), public, algorithm="HS256", headers={"kid": kid_of(key)})
    assert_refused_without_identity(await check(client, token))


async def test_an_expired_token_is_refused(
    client: AsyncTestClient[Any], private_key_pem: str
) -> None:
    now = int(time.time())
    expired = claims(iat=now - 600, exp=now - 1)
    assert_refused_without_identity(
        await check(client, signed(private_key(private_key_pem), expired))
    )


@pytest.mark.parametrize(
    "overrides",
    [
        {"aud": "some-other-api"},
        {"aud": ["some-other-api"]},
        {"iss": "someone-else"},
        {"iss": "facturation-aut"},
        {"iss": "facturation-auth-evil"},
    ],
    ids=["aud", "aud-list", "iss", "iss-prefix", "iss-extended"],
)
async def test_a_token_for_another_audience_or_issuer_is_refused(
    client: AsyncTestClient[Any], private_key_pem: str, overrides: dict[str, Any]
) -> None:
    token = signed(private_key(private_key_pem), claims(**overrides))
    assert_refused_without_identity(await check(client, token))


@pytest.mark.parametrize("missing", ["sub", "email", "iss", "aud", "iat", "exp", "jti"])
async def test_a_token_missing_a_required_claim_is_refused(
    client: AsyncTestClient[Any], private_key_pem: str, missing: str
) -> None:
    token = signed(private_key(private_key_pem), claims(**{missing: None}))
    assert_refused_without_identity(await check(client, token))


@pytest.mark.parametrize(
    "overrides", [{"sub": 42}, {"email": ""}, {"jti": "x" * 65}, {"email": ["a@b.c"]}]
)
async def test_a_token_with_malformed_claims_is_refused(
    client: AsyncTestClient[Any], private_key_pem: str, overrides: dict[str, Any]
) -> None:
    token = signed(private_key(private_key_pem), claims(**overrides))
    assert_refused_without_identity(await check(client, token))


async def test_a_token_is_refused_after_logout(client: AsyncTestClient[Any]) -> None:
    token = await access_token(client)
    assert (await check(client, token)).status_code == 200
    logout = await client.post("/auth/logout", headers={"Authorization": f"Bearer {token}"})
    assert logout.status_code == 204
    assert_refused_without_identity(await check(client, token))


@pytest.mark.parametrize(
    "authorization",
    [
        None,
        "",
        "Bearer",
        "Bearer ",
        "Basic dXNlcjpwYXNz",
        "Token {token}",
        "Bearer  {token}",
        "Bearer {token} extra",
        "Bearer {token}.more",
        "Bearer {token}garbage",
        "{token}",
        "Bearer not.a.jwt",
        "Bearer a.b",
        "Bearer " + "a" * 5000 + ".b.c",
    ],
    ids=lambda value: repr(value)[:30],
)
async def test_a_malformed_authorization_header_is_refused(
    client: AsyncTestClient[Any], authorization: str | None
) -> None:
    token = await access_token(client)
    headers = {} if authorization is None else {"Authorization": authorization.format(token=token)}
    assert_refused_without_identity(await client.get(CHECK, headers=headers))


async def test_two_authorization_headers_are_refused(client: AsyncTestClient[Any]) -> None:
    token = await access_token(client)
    headers = httpx.Headers(
        [("Authorization", f"Bearer {token}"), ("Authorization", "Bearer x.y.z")]
    )
    assert_refused_without_identity(await client.get(CHECK, headers=headers))


async def test_the_check_without_the_internal_credential_is_refused(
    client: AsyncTestClient[Any],
) -> None:
    token = await access_token(client)
    del client.headers[INTERNAL_TOKEN_HEADER]
    assert_refused_without_identity(await check(client, token))
    client.headers[INTERNAL_TOKEN_HEADER] = INTERNAL_TOKEN + "x"
    assert_refused_without_identity(await check(client, token))


async def test_a_token_of_the_previous_key_is_accepted_during_rotation(
    settings: AuthSettings, private_key_pem: str
) -> None:
    old_token = signed(private_key(private_key_pem), claims())
    rotated = msgspec.structs.replace(
        settings,
        jwt_private_key=generate_private_key_pem(),
        jwt_previous_public_keys=(private_key_pem,),
    )
    async with AsyncTestClient(create_app(rotated)) as client:
        client.headers[INTERNAL_TOKEN_HEADER] = INTERNAL_TOKEN
        assert (await check(client, old_token)).status_code == 200
        new_token = await access_token(client)
        kids = [key["kid"] for key in (await client.get("/auth/jwks.json")).json()["keys"]]
    assert kids == [
        jwt.get_unverified_header(new_token)["kid"],
        kid_of(private_key(private_key_pem)),
    ]


async def test_a_token_of_a_retired_key_is_refused(
    settings: AuthSettings, private_key_pem: str
) -> None:
    old_token = signed(private_key(private_key_pem), claims())
    rotated = msgspec.structs.replace(settings, jwt_private_key=generate_private_key_pem())
    async with AsyncTestClient(create_app(rotated)) as client:
        client.headers[INTERNAL_TOKEN_HEADER] = INTERNAL_TOKEN
        assert_refused_without_identity(await check(client, old_token))


async def test_the_check_fails_closed_when_the_revocation_list_is_unreachable(
    client: AsyncTestClient[Any],
) -> None:
    token = await access_token(client)
    tokens: Tokens = client.app.state.tokens
    unreachable = Database("postgresql://postgres@127.0.0.1:1/auth")  # nothing listens there
    original = tokens._database
    tokens._database = unreachable
    try:
        response = await check(client, token)
    finally:
        tokens._database = original
        await unreachable.dispose()
    assert response.status_code == 503
    assert response.headers["content-type"] == PROBLEM_MEDIA_TYPE
    assert "x-user-id" not in response.headers


async def test_the_check_survives_its_database_connections_being_dropped(
    client: AsyncTestClient[Any], auth_database_url: str
) -> None:
    """A database restart kills pooled connections; the lookup pool has no pre-ping, so the
    check must notice and retry on a fresh connection. (On SQLite there is no server to drop
    connections, so there the check simply keeps answering.)"""
    token = await access_token(client)
    assert (await check(client, token)).status_code == 200
    if using_postgres():
        assert await terminate_connections(auth_database_url) >= 1
    response = await check(client, token)
    assert response.status_code == 200
    assert response.headers["x-user-id"] == response.json()["user_id"]
