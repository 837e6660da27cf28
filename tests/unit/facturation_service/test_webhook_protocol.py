"""Facturation served as ``python -m facturation_service`` serves it, over real sockets: uvicorn
with ``shared.LaneProtocol``. A delivery the webhook lane takes is run as an exchange, past
uvicorn's request-response cycle, and answered as Litestar answers it (status, headers, request
id, body, journal row, metrics, access log); what the lane leaves goes through Litestar."""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
import pytest
import uvicorn

from facturation_service.app import create_app
from shared import (
    INTERNAL_TOKEN_HEADER,
    PROBLEM_MEDIA_TYPE,
    REQUEST_ID_HEADER,
    Database,
    LaneProtocol,
)
from shared._lane_protocol import LaneExchange
from tests.support import stripe_events
from tests.support.webhook_app import (
    INTERNAL_TOKEN,
    counted_deliveries,
    get_event,
    webhook_settings,
)

THROUGH_LITESTAR = {"Content-Type": "application/x-www-form-urlencoded"}
# Set by the server or per exchange: the rest of the head must be the same in either lane.
_VARYING = {"date", REQUEST_ID_HEADER.lower(), "content-length"}


@asynccontextmanager
async def served(database_url: str) -> AsyncIterator[httpx.AsyncClient]:
    """The app under ``webhook_settings`` served by uvicorn with :class:`LaneProtocol`, its
    lifespan run by uvicorn; yields a client of its port sending the internal credential."""
    config = uvicorn.Config(
        create_app(webhook_settings(database_url)),
        host="127.0.0.1",
        port=0,
        http=LaneProtocol,
        lifespan="on",
        log_config=None,
        access_log=False,
    )
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())
    while not server.started:  # noqa: ASYNC110 (uvicorn sets a flag, it has no event)
        await asyncio.sleep(0.01)
    port = server.servers[0].sockets[0].getsockname()[1]
    try:
        async with httpx.AsyncClient(
            base_url=f"http://127.0.0.1:{port}", headers={INTERNAL_TOKEN_HEADER: INTERNAL_TOKEN}
        ) as client:
            yield client
    finally:
        server.should_exit = True
        await task


@pytest.fixture
def exchanges(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The paths served by a :class:`LaneExchange` (not by uvicorn's cycle)."""
    taken: list[str] = []
    run = LaneExchange.run_asgi

    async def counted(self: LaneExchange, app: Any) -> None:
        taken.append(self.scope["path"])
        await run(self, app)

    monkeypatch.setattr(LaneExchange, "run_asgi", counted)
    return taken


async def _deliver(
    client: httpx.AsyncClient, headers: dict[str, str], *, secret: str | None = None
) -> tuple[str, httpx.Response]:
    event = stripe_events.event("invoice.paid", stripe_events.invoice("paid"))
    body, signed = stripe_events.signed_request(event, secret or stripe_events.WEBHOOK_SECRET)
    response = await client.post("/webhooks/stripe", content=body, headers={**signed, **headers})
    return event["id"], response


def _head(response: httpx.Response) -> dict[str, str]:
    return {name: value for name, value in response.headers.items() if name not in _VARYING}


async def test_a_delivery_through_the_protocol_is_answered_journaled_and_counted_as_litestar_does(
    facturation_url: str, db: Database, exchanges: list[str], caplog: pytest.LogCaptureFixture
) -> None:
    async with served(facturation_url) as client:
        before = (await client.get("/metrics")).text
        with caplog.at_level(logging.INFO, logger="access"):
            lane_id, lane = await _deliver(client, {REQUEST_ID_HEADER: "rid-1"})
            litestar_id, litestar = await _deliver(
                client, {REQUEST_ID_HEADER: "rid-2", **THROUGH_LITESTAR}
            )
            _, minted = await _deliver(client, {})
        after = (await client.get("/metrics")).text

    assert exchanges == ["/webhooks/stripe"] * 2  # the form body went to Litestar
    assert lane.status_code == litestar.status_code == minted.status_code == 200
    assert _head(lane) == _head(litestar)
    assert lane.headers["content-type"] == "application/json"
    assert "date" in lane.headers
    assert lane.headers["content-length"] == str(len(lane.content))
    assert (lane.headers[REQUEST_ID_HEADER], litestar.headers[REQUEST_ID_HEADER]) == (
        "rid-1",
        "rid-2",
    )
    assert re.fullmatch(r"[0-9a-f]{32}", minted.headers[REQUEST_ID_HEADER])
    assert lane.json() == {**litestar.json(), "id": lane_id}
    assert litestar.json()["id"] == litestar_id
    for event_id in (lane_id, litestar_id):
        assert await get_event(db, event_id) is not None
    assert counted_deliveries(after, 200) - counted_deliveries(before, 200) == 3
    lines = [
        (record.method, record.path, record.status)  # type: ignore[attr-defined]
        for record in caplog.records
        if record.name == "access"
    ]
    assert lines == [("POST", "/webhooks/stripe", 200)] * 3


async def test_a_refused_delivery_through_the_protocol_is_the_same_problem_as_litestars(
    facturation_url: str, db: Database, exchanges: list[str]
) -> None:
    secret = "whsec_not_ours_0123456789"
    async with served(facturation_url) as client:
        before = (await client.get("/metrics")).text
        lane_id, lane = await _deliver(client, {REQUEST_ID_HEADER: "rid-1"}, secret=secret)
        _, litestar = await _deliver(
            client, {REQUEST_ID_HEADER: "rid-2", **THROUGH_LITESTAR}, secret=secret
        )
        after = (await client.get("/metrics")).text

    assert exchanges == ["/webhooks/stripe"]
    assert lane.status_code == litestar.status_code == 400
    assert _head(lane) == _head(litestar)
    assert lane.headers["content-type"] == PROBLEM_MEDIA_TYPE
    assert lane.headers[REQUEST_ID_HEADER] == "rid-1"
    assert {**lane.json(), "request_id": "rid-2"} == litestar.json()
    assert await get_event(db, lane_id) is None
    assert counted_deliveries(after, 400) - counted_deliveries(before, 400) == 2


@pytest.mark.parametrize(
    ("headers", "status"),
    [
        ({INTERNAL_TOKEN_HEADER: "not-the-credential"}, 401),
        ({"Content-Type": "multipart/form-data; boundary=x"}, 200),
    ],
)
async def test_what_the_lane_does_not_take_goes_through_litestar(
    facturation_url: str, exchanges: list[str], headers: dict[str, str], status: int
) -> None:
    async with served(facturation_url) as client:
        _, response = await _deliver(client, headers)
        health = await client.get("/healthz")
        wrong_method = await client.put("/webhooks/stripe", content=b"{}")

    assert exchanges == []
    assert response.status_code == status
    assert health.status_code == 200
    assert wrong_method.status_code == 405
