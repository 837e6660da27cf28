from __future__ import annotations

import json
import logging

import httpx
import pytest

from shared import (
    INTERNAL_TOKEN_HEADER,
    REQUEST_ID_HEADER,
    async_database_url,
    internal_client,
    internal_token_matches,
)
from shared._logging import JsonFormatter
from shared._request_id import request_id_var


def test_log_lines_are_json_with_the_request_id() -> None:
    record = logging.LogRecord("x", logging.INFO, __file__, 1, "hello %s", ("there",), None)
    record.status = 201
    token = request_id_var.set("req-42")
    try:
        line = JsonFormatter("auth").format(record)
    finally:
        request_id_var.reset(token)
    entry = json.loads(line)
    assert entry["message"] == "hello there"
    assert entry["request_id"] == "req-42"
    assert entry["service"] == "auth"
    assert entry["status"] == 201


def test_uvicorns_coloured_copy_of_the_message_is_left_out() -> None:
    record = logging.LogRecord("uvicorn.error", logging.INFO, __file__, 1, "started", (), None)
    record.color_message = "\x1b[1mstarted\x1b[0m"
    entry = json.loads(JsonFormatter("gateway").format(record))
    assert entry["message"] == "started"
    assert "color_message" not in entry


async def test_internal_client_carries_credential_and_request_id() -> None:
    seen: dict[str, str] = {}

    def handler(request: httpx.Request) -> httpx.Response:
        seen.update(request.headers)
        return httpx.Response(204)

    client = internal_client("http://upstream.test", "cred")
    client._transport = httpx.MockTransport(handler)
    token = request_id_var.set("req-7")
    try:
        await client.get("/x")
    finally:
        request_id_var.reset(token)
        await client.aclose()
    assert seen[INTERNAL_TOKEN_HEADER.lower()] == "cred"
    assert seen[REQUEST_ID_HEADER.lower()] == "req-7"


@pytest.mark.parametrize(
    ("presented", "expected", "matches"),
    [("abc", "abc", True), ("abd", "abc", False), (None, "abc", False), ("", "", False)],
)
def test_internal_token_comparison(presented: str | None, expected: str, matches: bool) -> None:
    assert internal_token_matches(presented, expected) is matches


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("postgresql://u@h:5432/d", "postgresql+asyncpg://u@h:5432/d"),
        ("postgres://u:p%40@h/d", "postgresql+asyncpg://u:p%40@h/d"),
        ("sqlite:///x.db", "sqlite+aiosqlite:///x.db"),
        ("postgresql+asyncpg://h/d", "postgresql+asyncpg://h/d"),
    ],
)
def test_database_urls_get_the_async_driver(url: str, expected: str) -> None:
    assert async_database_url(url) == expected
