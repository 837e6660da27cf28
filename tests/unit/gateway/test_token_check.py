from __future__ import annotations

import time
from typing import Any

import msgspec
import pytest

from gateway.headers import Identity
from gateway.proxy import Upstream
from gateway.token_check import DecisionCache, TokenChecker
from shared import (
    ServiceUnavailableError,
    UnauthorizedError,
    UpstreamConnectError,
    UpstreamProtocolError,
    UpstreamTimeoutError,
    bearer_token,
)

TOKEN = b"eyJhbGciOiJFZERTQSJ9.eyJzdWIiOiJ1In0.c2lnbmF0dXJl"


@pytest.mark.parametrize(
    "authorization",
    [
        None,
        b"",
        b"Bearer",
        b"Basic dXNlcjpw",
        b"Bearer a.b",
        b"Bearer a.b.c.d",
        b"Bearer a b.c.d",
        b"Bearer " + b"a" * 5000 + b".b.c",
        b"Bearer a.b.c\x00",
    ],
)
def test_malformed_authorization_is_refused_without_asking_auth(
    authorization: bytes | None,
) -> None:
    with pytest.raises(UnauthorizedError):
        bearer_token(authorization)


def test_bearer_scheme_is_case_insensitive() -> None:
    assert bearer_token(b"bearer " + TOKEN) == TOKEN


def test_cache_keeps_a_decision_for_its_ttl_only(monkeypatch: pytest.MonkeyPatch) -> None:
    cache = DecisionCache(ttl=5, max_entries=10)
    now = [1000.0]
    monkeypatch.setattr(time, "monotonic", lambda: now[0])
    key = DecisionCache.key(TOKEN)
    cache.put(key, Identity("u", "u@example.com"), exp=int(time.time()) + 3600)
    now[0] += 4.9
    assert cache.get(key) is not None
    now[0] += 0.2
    assert cache.get(key) is None
    assert len(cache) == 0


def test_cache_never_outlives_the_token() -> None:
    cache = DecisionCache(ttl=30, max_entries=10)
    key = DecisionCache.key(TOKEN)
    cache.put(key, Identity("u", "u@example.com"), exp=int(time.time()))  # expires now
    assert cache.get(key) is None
    cache.put(key, Identity("u", "u@example.com"), exp=int(time.time()) + 1)
    entry = cache._entries.get(key)
    assert entry is not None
    entry_deadline = entry[0]
    assert entry_deadline <= time.monotonic() + 1


def test_cache_is_bounded_and_drops_the_oldest() -> None:
    cache = DecisionCache(ttl=30, max_entries=3)
    exp = int(time.time()) + 600
    keys = [DecisionCache.key(bytes([n])) for n in range(5)]
    for key in keys:
        cache.put(key, Identity("u", "e"), exp)
    assert len(cache) == 3
    assert cache.get(keys[0]) is None
    assert cache.get(keys[4]) is not None


def test_cache_key_is_a_hash_not_the_token() -> None:
    key = DecisionCache.key(TOKEN)
    assert TOKEN not in key
    assert len(key) == 32


class FakeAnswer:
    def __init__(self, status: int, body: bytes) -> None:
        self.status = status
        self.body = body

    async def read(self) -> bytes:
        return self.body


class FakeAuth(Upstream):
    """Auth's token check without a network: counts calls, answers what the test sets."""

    def __init__(self) -> None:
        super().__init__("auth", "http://auth", connect_timeout=1, timeout=1, max_connections=1)
        self.calls: list[tuple[str, str, dict[bytes, bytes]]] = []
        self.status = 200
        self.body = msgspec.json.encode(
            {"user_id": "u-1", "email": "u@example.com", "exp": int(time.time()) + 900, "jti": "j"}
        )
        self.error: Exception | None = None

    async def request(  # type: ignore[override]
        self, method: str, target: str, headers: Any, body: Any = None, **_: Any
    ) -> FakeAnswer:
        self.calls.append((method, target, dict(headers)))
        if self.error is not None:
            raise self.error
        return FakeAnswer(self.status, self.body)


def checker(auth: FakeAuth, ttl: float) -> TokenChecker:
    return TokenChecker(auth, internal_token="internal", timeout=1, cache=DecisionCache(ttl, 100))


async def test_a_cached_decision_is_not_asked_again() -> None:
    auth = FakeAuth()
    check = checker(auth, ttl=30)
    first = await check.identity(b"Bearer " + TOKEN, b"rid")
    second = await check.identity(b"Bearer " + TOKEN, b"rid")
    assert (first.user_id, first.email) == ("u-1", "u@example.com")
    assert second is first
    assert len(auth.calls) == 1
    method, target, headers = auth.calls[0]
    assert (method, target) == ("GET", "/internal/v1/tokens/check")
    assert headers[b"x-internal-token"] == b"internal"
    assert headers[b"authorization"] == b"Bearer " + TOKEN
    assert headers[b"x-request-id"] == b"rid"


async def test_cache_zero_asks_auth_every_time() -> None:
    auth = FakeAuth()
    check = checker(auth, ttl=0)
    await check.identity(b"Bearer " + TOKEN, b"rid")
    await check.identity(b"Bearer " + TOKEN, b"rid")
    assert len(auth.calls) == 2
    assert len(check.cache) == 0


async def test_refusals_are_not_cached() -> None:
    auth = FakeAuth()
    auth.status, auth.body = 401, b'{"status": 401}'
    check = checker(auth, ttl=30)
    for _ in range(2):
        with pytest.raises(UnauthorizedError):
            await check.identity(b"Bearer " + TOKEN, b"rid")
    assert len(auth.calls) == 2


async def test_forget_drops_the_decision() -> None:
    auth = FakeAuth()
    check = checker(auth, ttl=30)
    await check.identity(b"Bearer " + TOKEN, b"rid")
    check.forget(b"Bearer " + TOKEN)
    await check.identity(b"Bearer " + TOKEN, b"rid")
    assert len(auth.calls) == 2


@pytest.mark.parametrize(
    ("status", "body", "error"),
    [
        (200, b"{}", None),
        (200, b"not json", None),
        (200, b'{"user_id": "u\\r\\nX-Evil: 1", "email": "e", "exp": 1, "jti": "j"}', None),
        (500, b"", None),
        (429, b"", None),
        (200, b"", UpstreamConnectError("refused")),
        (200, b"", UpstreamTimeoutError("slow")),
        (200, b"", UpstreamProtocolError("reset")),
    ],
)
async def test_auth_without_a_usable_answer_fails_closed(
    status: int, body: bytes, error: Exception | None
) -> None:
    auth = FakeAuth()
    auth.status, auth.body, auth.error = status, body, error
    check = checker(auth, ttl=30)
    with pytest.raises(ServiceUnavailableError):
        await check.identity(b"Bearer " + TOKEN, b"rid")
    assert len(check.cache) == 0


async def test_a_cached_decision_serves_the_same_token_with_its_scheme_in_any_case() -> None:
    auth = FakeAuth()
    check = checker(auth, ttl=30)
    first = await check.identity(b"Bearer " + TOKEN, b"rid")
    assert await check.identity(b"bEARER " + TOKEN, b"rid") is first
    assert len(auth.calls) == 1


@pytest.mark.parametrize(
    ("authorization", "auth_calls"),
    [
        (b"Basic " + TOKEN, 1),
        (b"Bearer  " + TOKEN, 1),
        (b"Bearer " + TOKEN + b" ", 1),
        (b" Bearer " + TOKEN, 1),
        (b"?", 1),
        (b"Bearer " + TOKEN + b"x", 2),
    ],
)
async def test_a_cached_decision_never_serves_another_spelling_of_its_token(
    authorization: bytes, auth_calls: int
) -> None:
    auth = FakeAuth()
    check = checker(auth, ttl=30)
    await check.identity(b"Bearer " + TOKEN, b"rid")
    auth.status, auth.body = 401, b'{"status": 401}'
    with pytest.raises(UnauthorizedError):
        await check.identity(authorization, b"rid")
    # A malformed value is refused by the shape check before auth is asked; another well-formed
    # token is asked about: never the cached decision.
    assert len(auth.calls) == auth_calls
