"""The lane Stripe's deliveries take past Litestar's layers answers as the route did. A form
``Content-Type`` sends the same delivery through Litestar (the lane leaves those to it)."""

from __future__ import annotations

import logging
import re
from typing import Any

import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient

from facturation_service import webhook_lane
from shared import PROBLEM_MEDIA_TYPE, REQUEST_ID_HEADER, check_json_depth
from tests.support import stripe_events
from tests.support.webhook_app import counted_deliveries

THROUGH_LITESTAR = {"Content-Type": "application/x-www-form-urlencoded"}


@pytest.fixture
def lane_calls(monkeypatch: pytest.MonkeyPatch) -> list[bytes]:
    """The bodies the lane took (it checks each one's depth itself)."""
    taken: list[bytes] = []

    def check(body: bytes, max_depth: int) -> None:
        taken.append(body)
        check_json_depth(body, max_depth)

    monkeypatch.setattr(webhook_lane, "check_json_depth", check)
    return taken


async def _deliver(
    client: AsyncTestClient[Litestar], headers: dict[str, str], *, secret: str | None = None
) -> Any:
    event = stripe_events.event("invoice.paid", stripe_events.invoice("paid"))
    body, signed = stripe_events.signed_request(event, secret or stripe_events.WEBHOOK_SECRET)
    return await client.post("/webhooks/stripe", content=body, headers={**signed, **headers})


async def test_a_delivery_is_acknowledged_the_same_with_or_without_litestars_layers(
    webhook_client: AsyncTestClient[Litestar], lane_calls: list[bytes]
) -> None:
    lane = await _deliver(webhook_client, {REQUEST_ID_HEADER: "rid-1"})
    litestar = await _deliver(webhook_client, {REQUEST_ID_HEADER: "rid-2", **THROUGH_LITESTAR})

    assert len(lane_calls) == 1
    assert lane.status_code == litestar.status_code == 200
    assert lane.headers["content-type"] == litestar.headers["content-type"]
    assert sorted(lane.headers) == sorted(litestar.headers)
    assert (lane.headers[REQUEST_ID_HEADER], litestar.headers[REQUEST_ID_HEADER]) == (
        "rid-1",
        "rid-2",
    )
    assert list(lane.json()) == list(litestar.json()) == ["id", "duplicate", "handled"]
    assert lane.json()["duplicate"] is litestar.json()["duplicate"] is False


async def test_a_bad_signature_is_the_same_problem_with_or_without_litestars_layers(
    webhook_client: AsyncTestClient[Litestar], lane_calls: list[bytes]
) -> None:
    secret = "whsec_not_ours_0123456789"
    lane = await _deliver(webhook_client, {REQUEST_ID_HEADER: "rid-1"}, secret=secret)
    litestar = await _deliver(
        webhook_client, {REQUEST_ID_HEADER: "rid-2", **THROUGH_LITESTAR}, secret=secret
    )

    assert len(lane_calls) == 1
    assert lane.status_code == litestar.status_code == 400
    assert lane.headers["content-type"] == litestar.headers["content-type"] == PROBLEM_MEDIA_TYPE
    assert {**lane.json(), "request_id": "rid-2"} == litestar.json()


async def test_deliveries_in_either_lane_are_counted_in_the_same_prometheus_series(
    webhook_client: AsyncTestClient[Litestar], lane_calls: list[bytes]
) -> None:
    before = (await webhook_client.get("/metrics")).text
    for headers in ({}, THROUGH_LITESTAR):
        await _deliver(webhook_client, headers)
        await _deliver(webhook_client, headers, secret="whsec_not_ours_0123456789")
    after = (await webhook_client.get("/metrics")).text

    assert len(lane_calls) == 2
    assert counted_deliveries(after, 200) - counted_deliveries(before, 200) == 2
    assert counted_deliveries(after, 400) - counted_deliveries(before, 400) == 2


async def test_both_lanes_mint_the_request_id_and_write_the_same_access_log_line(
    webhook_client: AsyncTestClient[Litestar],
    lane_calls: list[bytes],
    caplog: pytest.LogCaptureFixture,
) -> None:
    with caplog.at_level(logging.INFO, logger="access"):
        lane = await _deliver(webhook_client, {})
        litestar = await _deliver(webhook_client, THROUGH_LITESTAR)

    lines = [
        (record.method, record.path, record.status)  # type: ignore[attr-defined]
        for record in caplog.records
        if record.name == "access"
    ]
    assert len(lane_calls) == 1
    assert lines == [("POST", "/webhooks/stripe", 200)] * 2
    for response in (lane, litestar):
        assert re.fullmatch(r"[0-9a-f]{32}", response.headers[REQUEST_ID_HEADER])
    assert lane.headers[REQUEST_ID_HEADER] != litestar.headers[REQUEST_ID_HEADER]


@pytest.mark.parametrize(
    "headers",
    [
        {"X-Internal-Token": "not-the-credential"},
        {"Transfer-Encoding": "chunked"},
        {"Content-Type": "multipart/form-data; boundary=x"},
    ],
)
async def test_what_the_lane_does_not_take_is_answered_by_litestar(
    webhook_client: AsyncTestClient[Litestar], lane_calls: list[bytes], headers: dict[str, str]
) -> None:
    response = await _deliver(webhook_client, headers)

    assert lane_calls == []
    expected = 401 if "X-Internal-Token" in headers else 200
    assert response.status_code == expected
