"""The relay route's own bookkeeping, at the lane: a relay request that is cancelled while its
deliveries wait for the journal (the gateway went away) leaves none of them counted in progress,
and each still gets its access log line, as an exchange that never answered does."""

from __future__ import annotations

import asyncio
from typing import Any

from prometheus_client import REGISTRY

from facturation_service.journal import EventEnvelope
from facturation_service.webhook_lane import WebhookLane
from facturation_service.webhooks import WEBHOOK_PATH, WebhookIntake
from shared import (
    INTERNAL_TOKEN_HEADER,
    RELAY_MEDIA_TYPE,
    RELAY_PATH,
    REQUEST_ID_HEADER,
    RelayedDelivery,
    RequestMetrics,
    encode_relay,
    metrics_config,
)
from tests.support import stripe_events
from tests.support.access_log import access_lines

TOKEN = "lane-internal-token"
APP_NAME = "relay-lane-test"


class _StalledJournal:
    """A journal whose batches never commit: every delivery waits on it."""

    def __init__(self, expected: int) -> None:
        self.waiting: list[asyncio.Future[bool]] = []
        self.expected = expected
        self.all_waiting = asyncio.Event()

    def record(
        self, envelope: EventEnvelope, payload: str, *, handled: bool
    ) -> asyncio.Future[bool]:
        self.waiting.append(asyncio.get_running_loop().create_future())
        if len(self.waiting) == self.expected:
            self.all_waiting.set()
        return self.waiting[-1]


class _Worker:
    def notify(self) -> None:
        pass


async def _litestar(scope: Any, receive: Any, send: Any) -> None:
    raise AssertionError("every delivery here is one the lane takes")


def _in_progress() -> float | None:
    labels = {"method": "POST", "path": WEBHOOK_PATH, "status_code": "200", "app_name": APP_NAME}
    return REGISTRY.get_sample_value("http_requests_in_progress", labels)


async def test_a_cancelled_relay_request_leaves_no_delivery_in_progress_and_logs_each() -> None:
    journal = _StalledJournal(expected=3)
    lane = WebhookLane(
        _litestar,
        WebhookIntake([stripe_events.WEBHOOK_SECRET], journal, _Worker()),  # type: ignore[arg-type]
        RequestMetrics(metrics_config(APP_NAME)),
        internal_token=TOKEN,
        max_body_bytes=1 << 20,
        max_json_depth=64,
    )
    deliveries = []
    for n in range(3):
        body = stripe_events.encode(
            stripe_events.event("invoice.paid", stripe_events.invoice("paid"))
        )
        headers = {
            INTERNAL_TOKEN_HEADER: TOKEN,
            "Stripe-Signature": stripe_events.sign(body),
            "Content-Length": str(len(body)),
            REQUEST_ID_HEADER: f"rid-{n}",
        }
        deliveries.append(
            RelayedDelivery([(k.lower().encode(), v.encode()) for k, v in headers.items()], body)
        )
    relay_body = encode_relay(deliveries)
    scope = {
        "type": "http",
        "http_version": "1.1",
        "method": "POST",
        "path": RELAY_PATH,
        "raw_path": RELAY_PATH.encode(),
        "root_path": "",
        "query_string": b"",
        "headers": [
            (b"host", b"facturation"),
            (INTERNAL_TOKEN_HEADER.lower().encode(), TOKEN.encode()),
            (b"content-type", RELAY_MEDIA_TYPE.encode()),
            (b"content-length", str(len(relay_body)).encode()),
        ],
        "state": {},
    }

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": relay_body, "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        raise AssertionError("nothing is answered: the journal never commits")

    with access_lines() as handler:
        request = asyncio.create_task(lane(scope, receive, send))  # type: ignore[arg-type]
        await asyncio.wait_for(journal.all_waiting.wait(), timeout=5)
        assert _in_progress() == 3
        request.cancel()
        await asyncio.wait([request])

    assert request.cancelled()
    assert _in_progress() == 0
    assert all(waiting.cancelled() for waiting in journal.waiting)  # the batch skips them
    delivery_lines = [line for line in handler.lines if line[0] == WEBHOOK_PATH]
    assert delivery_lines == [(WEBHOOK_PATH, 500, f"rid-{n}") for n in range(3)]
