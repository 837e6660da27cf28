"""The lane proxied requests take past Litestar's layers answers as Litestar did."""

from __future__ import annotations

import logging
import re

import pytest
from litestar.testing import AsyncTestClient

from gateway.app import create_app
from shared import PROBLEM_MEDIA_TYPE, REQUEST_ID_HEADER
from tests.unit.gateway.test_app import settings

ORIGIN = {"Origin": "http://localhost:8000"}  # with an Origin, the request goes through Litestar


def _count(metrics: str, method: str, path: str, status: int) -> float:
    pattern = (
        rf'^http_requests_total{{app_name="gateway",method="{method}",path="{path}",'
        rf'status_code="{status}"}} ([\d.]+)$'
    )
    match = re.search(pattern, metrics, re.MULTILINE)
    return float(match.group(1)) if match else 0.0


async def test_a_proxied_error_is_the_same_problem_with_or_without_litestars_layers() -> None:
    async with AsyncTestClient(create_app(settings())) as client:
        lane = await client.get("/api/v1/products", headers={REQUEST_ID_HEADER: "rid-1"})
        litestar = await client.get(
            "/api/v1/products", headers={REQUEST_ID_HEADER: "rid-2", **ORIGIN}
        )
    assert lane.status_code == litestar.status_code == 502
    assert lane.headers["content-type"] == litestar.headers["content-type"] == PROBLEM_MEDIA_TYPE
    assert lane.headers[REQUEST_ID_HEADER] == "rid-1"
    assert {**lane.json(), "request_id": "rid-2"} == litestar.json()
    assert "access-control-allow-origin" in litestar.headers


async def test_requests_in_either_lane_are_counted_in_the_same_prometheus_series() -> None:
    async with AsyncTestClient(create_app(settings())) as client:
        before = (await client.get("/metrics")).text
        await client.get("/api/v1/products")
        await client.get("/api/v1/products", headers=ORIGIN)
        await client.post("/webhooks/stripe", content=b"{}")
        await client.post("/webhooks/stripe", content=b"{}", headers=ORIGIN)
        after = (await client.get("/metrics")).text
    for method, path in (("GET", ""), ("POST", "/webhooks/stripe")):
        assert _count(after, method, path, 502) - _count(before, method, path, 502) == 2


async def test_the_public_api_document_and_preflights_are_still_litestars() -> None:
    async with AsyncTestClient(create_app(settings())) as client:
        document = await client.get("/api/v1/openapi.json")
        preflight = await client.options(
            "/api/v1/billing/invoices", headers={**ORIGIN, "Access-Control-Request-Method": "GET"}
        )
    # The document is assembled from the private services' own (unreachable here): the route
    # table has no such path, so a proxied request would have been a 404.
    assert document.status_code == 502
    assert document.json()["detail"] == "The auth service could not be reached."
    assert preflight.status_code in (200, 204)
    assert preflight.headers["access-control-allow-origin"] == ORIGIN["Origin"]


async def test_both_lanes_mint_the_request_id_and_write_the_same_access_log_line(
    caplog: pytest.LogCaptureFixture,
) -> None:
    async with AsyncTestClient(create_app(settings())) as client:
        with caplog.at_level(logging.INFO, logger="access"):
            lane = await client.get("/api/v1/products")
            litestar = await client.get("/api/v1/products", headers=ORIGIN)
    lines = [
        (record.method, record.path, record.status)  # type: ignore[attr-defined]
        for record in caplog.records
        if record.name == "access"
    ]
    assert lines == [("GET", "/api/v1/products", 502)] * 2
    for response in (lane, litestar):
        assert re.fullmatch(r"[0-9a-f]{32}", response.headers[REQUEST_ID_HEADER])
        assert response.json()["request_id"] == response.headers[REQUEST_ID_HEADER]
    assert lane.headers[REQUEST_ID_HEADER] != litestar.headers[REQUEST_ID_HEADER]
