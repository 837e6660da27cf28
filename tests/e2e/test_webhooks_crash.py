"""A facturation process killed with SIGKILL while it is applying an event: the event, left
``processing``, is applied by the next process once its lease has run out.

To hold the worker mid-event, invoices are re-fetched from Stripe (FACTURATION_REFETCH_INVOICES)
and the Stripe stand-in keeps the first request waiting until the process is dead.
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any

import httpx
import pytest

from shared import INTERNAL_TOKEN_HEADER, Database
from tests.support import stripe_events
from tests.support.databases import fresh_database
from tests.support.processes import ServiceProcess
from tests.support.threaded_server import serving
from tests.support.webhook_app import get_invoice

INTERNAL_TOKEN = "e2e-crash-internal-token"


class HeldStripe:
    """Answers ``GET /v1/invoices/{id}``; holds requests while ``gate`` is closed."""

    def __init__(self, invoice: dict[str, Any]) -> None:
        self.invoice = invoice
        self.gate = threading.Event()
        self.requests = 0
        self.port = 0
        stand_in = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                stand_in.requests += 1
                stand_in.gate.wait(60)
                body = json.dumps(stand_in.invoice).encode()
                try:
                    self.send_response(200)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(body)))
                    self.send_header("Request-Id", "req_held_stand_in")
                    self.end_headers()
                    self.wfile.write(body)
                except OSError:
                    pass  # the caller was killed meanwhile

            def log_message(self, *_: object) -> None:
                return None

        self.handler = Handler

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"


@pytest.fixture
def held_invoice() -> Iterator[tuple[HeldStripe, dict[str, Any]]]:
    invoice = stripe_events.invoice("paid")
    stand_in = HeldStripe(invoice)
    with serving(stand_in.handler) as stand_in.port:
        try:
            yield stand_in, invoice
        finally:
            stand_in.gate.set()  # a request still held ends before the server shuts down


async def journal_entry(process: ServiceProcess, event_id: str) -> dict[str, Any] | None:
    async with httpx.AsyncClient(base_url=process.url, timeout=5) as http:
        response = await http.get(
            "/internal/v1/webhook-events",
            params={"type": "invoice.paid"},
            headers={INTERNAL_TOKEN_HEADER: INTERNAL_TOKEN},
        )
    for entry in response.json()["data"]:
        if entry["id"] == event_id:
            return dict(entry)
    return None


async def eventually(check: Any, within: float = 20.0) -> Any:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        value = await check()
        if value:
            return value
        await asyncio.sleep(0.1)
    raise AssertionError("condition not reached in time")


async def test_an_event_whose_process_was_killed_mid_event_is_applied_after_restart(
    tmp_path: Path, held_invoice: tuple[HeldStripe, dict[str, Any]]
) -> None:
    stand_in, invoice = held_invoice
    async with fresh_database("crash", tmp_path) as database_url:
        env = {
            "FACTURATION_DATABASE_URL": database_url,
            "INTERNAL_TOKEN": INTERNAL_TOKEN,
            "STRIPE_SECRET_KEY": "sk_test_crash",
            "STRIPE_API_BASE": stand_in.url,
            "STRIPE_MAX_NETWORK_RETRIES": "0",
            "STRIPE_TIMEOUT_SECONDS": "60",
            "STRIPE_WEBHOOK_SECRET": stripe_events.WEBHOOK_SECRET,
            "FACTURATION_REFETCH_INVOICES": "true",
            "FACTURATION_WEBHOOK_LEASE_SECONDS": "2",
            "FACTURATION_WEBHOOK_POLL_SECONDS": "0.2",
            "LOG_LEVEL": "WARNING",
        }
        first = ServiceProcess("facturation_service", env, tmp_path)
        await first.migrate()
        await asyncio.to_thread(first.start)
        second = ServiceProcess("facturation_service", env, tmp_path)
        try:
            event = stripe_events.event("invoice.paid", invoice)
            body, headers = stripe_events.signed_request(event)
            # Straight to the service, so the credential the gateway would add goes along.
            headers[INTERNAL_TOKEN_HEADER] = INTERNAL_TOKEN
            async with httpx.AsyncClient(base_url=first.url, timeout=5) as http:
                accepted = await http.post("/webhooks/stripe", content=body, headers=headers)
            assert accepted.status_code == 200

            async def held() -> bool:
                return stand_in.requests >= 1

            await eventually(held)
            entry = await journal_entry(first, event["id"])
            assert entry is not None
            assert (entry["status"], entry["attempts"]) == ("processing", 1)

            await asyncio.to_thread(first.kill)
            stand_in.gate.set()
            await asyncio.to_thread(second.start)

            async def processed() -> dict[str, Any] | None:
                entry = await journal_entry(second, event["id"])
                return entry if entry and entry["status"] == "processed" else None

            try:
                entry = await eventually(processed)
            except AssertionError:
                raise AssertionError(
                    f"{await journal_entry(second, event['id'])}\n{second.logs()[-4000:]}"
                ) from None
            assert entry["attempts"] == 2
            database = Database(database_url)
            try:
                stored = await get_invoice(database, invoice["id"])
            finally:
                await database.dispose()
            assert stored is not None
            assert (stored.status, stored.amount_paid) == ("paid", invoice["amount_paid"])
        finally:
            await asyncio.to_thread(first.stop)
            await asyncio.to_thread(second.stop)
