from __future__ import annotations

import pytest

from shared import BEARER_CHALLENGE, UnauthorizedError, bearer_token

TOKEN = "eyJhbGciOiJFZERTQSJ9.eyJzdWIiOiJ1In0.c2lnbmF0dXJl"

MALFORMED = [
    None,
    "",
    "Bearer",
    "Bearer ",
    "Basic dXNlcjpw",
    "Token {token}",
    "{token}",
    "Bearer  {token}",
    " Bearer {token}",
    "Bearer {token} ",
    "Bearer\t{token}",
    "Bearer {token} extra",
    "Bearer {token}.more",
    "Bearer {token}, Bearer {token}",
    "Bearer a.b",
    "Bearer a.b.",
    "Bearer a.b.c.d",
    "Bearer a b.c.d",
    "Bearer a=.b.c",
    "Bearer " + "a" * 5000 + ".b.c",
    "Bearer a.b.c\x00",
    "Bearer a.b.c\n",
]


@pytest.mark.parametrize("authorization", MALFORMED, ids=lambda value: repr(value)[:30])
def test_malformed_authorization_is_refused_with_the_bearer_challenge(
    authorization: str | None,
) -> None:
    value = None if authorization is None else authorization.format(token=TOKEN)
    with pytest.raises(UnauthorizedError) as as_text:
        bearer_token(value)
    with pytest.raises(UnauthorizedError) as as_bytes:
        bearer_token(None if value is None else value.encode("latin-1"))
    for caught in (as_text, as_bytes):
        assert caught.value.headers == {"WWW-Authenticate": BEARER_CHALLENGE}


def test_the_token_comes_back_in_the_type_it_was_given() -> None:
    assert bearer_token(f"Bearer {TOKEN}") == TOKEN
    assert bearer_token(f"Bearer {TOKEN}".encode()) == TOKEN.encode()


@pytest.mark.parametrize("scheme", ["bearer", "BEARER", "BeArEr"])
def test_bearer_scheme_is_case_insensitive(scheme: str) -> None:
    assert bearer_token(f"{scheme} {TOKEN}") == TOKEN
    assert bearer_token(f"{scheme} {TOKEN}".encode()) == TOKEN.encode()
