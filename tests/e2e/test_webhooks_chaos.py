"""Chaos: thousands of invoice and order events, with duplicates, shuffled, from concurrent
senders that retry every non-2xx like Stripe, while facturation is killed (SIGKILL) and restarted
mid-run. In the end every invoice is stored once in its newest state, every order is paid once,
and the journal is drained with nothing failed.

    TEST_DATABASE_URL=... .venv/bin/python -m pytest tests/e2e/test_webhooks_chaos.py -s
"""

from __future__ import annotations

import asyncio
import random
import time
from collections import Counter
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import func, insert, select

from facturation_service.models import Entitlement, Invoice, Order, WebhookEvent, utcnow
from shared import INTERNAL_TOKEN_HEADER, Database
from tests.support import stripe_events
from tests.support.databases import fresh_database
from tests.support.processes import ServiceProcess

INTERNAL_TOKEN = "e2e-chaos-internal-token"
INVOICES = 400
ORDERS = 300
DUPLICATE_SHARE = 0.25
SENDERS = 12
KILL_AFTER_SHARE = 0.4
INVOICE_STEPS = [
    ("invoice.created", "draft", 0),
    ("invoice.finalized", "open", 1),
    ("invoice.paid", "paid", 2),
    ("invoice.payment_succeeded", "paid", 2),
]


def build_events(base: int) -> tuple[list[dict[str, Any]], list[str], list[str]]:
    events: list[dict[str, Any]] = []
    invoice_ids, session_ids = [], []
    for index in range(INVOICES):
        invoice_id = f"in_chaos{index:05d}"
        invoice_ids.append(invoice_id)
        created = base + index * 10
        for event_type, status, offset in INVOICE_STEPS:
            snapshot = stripe_events.invoice(status, invoice_id=invoice_id, created=created)
            events.append(stripe_events.event(event_type, snapshot, created=created + offset))
    for index in range(ORDERS):
        session_id = f"cs_test_chaos{index:05d}"
        session_ids.append(session_id)
        session = stripe_events.checkout_session(
            session_id=session_id,
            invoice_id=f"in_chaos{index:05d}",
            metadata={"order_id": f"ord_chaos{index:05d}", "user_id": "chaos-user"},
            created=base,
        )
        events.append(stripe_events.event("checkout.session.completed", session, created=base))
    return events, invoice_ids, session_ids


class Senders:
    """Like Stripe: each delivery is retried with a growing delay until it answers 2xx."""

    def __init__(self, url: str, deliveries: list[dict[str, Any]]) -> None:
        self.url = url
        self.queue: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        for event in deliveries:
            self.queue.put_nowait(event)
        self.acknowledged = 0
        self.faults: Counter[str] = Counter()

    async def run(self) -> None:
        async with httpx.AsyncClient(timeout=10) as http:
            await asyncio.gather(*(self._sender(http) for _ in range(SENDERS)))

    async def _sender(self, http: httpx.AsyncClient) -> None:
        while not self.queue.empty():
            event = self.queue.get_nowait()
            attempt = 0
            while True:
                body, headers = stripe_events.signed_request(event)
                headers[INTERNAL_TOKEN_HEADER] = INTERNAL_TOKEN
                try:
                    response = await http.post(
                        f"{self.url}/webhooks/stripe", content=body, headers=headers
                    )
                    if response.is_success:
                        self.acknowledged += 1
                        break
                    self.faults[f"http {response.status_code}"] += 1
                except httpx.HTTPError as exc:
                    self.faults[type(exc).__name__] += 1
                attempt += 1
                await asyncio.sleep(min(0.05 * 2**attempt, 1.0))


async def journal_statuses(database: Database) -> dict[str, int]:
    async with database.sessionmaker() as session:
        rows = (
            await session.execute(
                select(WebhookEvent.status, func.count()).group_by(WebhookEvent.status)
            )
        ).all()
    return {status: count for status, count in rows}


async def test_killed_mid_run_every_invoice_ends_in_its_newest_state_and_every_order_fulfilled_once(
    tmp_path: Path,
) -> None:
    events, invoice_ids, session_ids = build_events(base=int(time.time()) - 86_400)
    rng = random.Random(20261130)
    deliveries = events + rng.sample(events, int(len(events) * DUPLICATE_SHARE))
    rng.shuffle(deliveries)
    async with fresh_database("chaos", tmp_path) as database_url:
        env = {
            "FACTURATION_DATABASE_URL": database_url,
            "INTERNAL_TOKEN": INTERNAL_TOKEN,
            "STRIPE_SECRET_KEY": "sk_test_chaos",
            "STRIPE_API_BASE": "http://127.0.0.1:9",
            "STRIPE_WEBHOOK_SECRET": stripe_events.WEBHOOK_SECRET,
            "FACTURATION_WEBHOOK_LEASE_SECONDS": "2",
            "FACTURATION_WEBHOOK_POLL_SECONDS": "0.2",
            "FACTURATION_CATCHUP_SECONDS": "0",
            "LOG_LEVEL": "ERROR",
        }
        first = ServiceProcess("facturation_service", env, tmp_path)
        await first.migrate()
        database = Database(database_url)
        now = utcnow()
        async with database.engine.begin() as connection:
            await connection.execute(
                insert(Order),
                [
                    {
                        "id": f"ord_chaos{index:05d}",
                        "user_id": "chaos-user",
                        "user_stripe_id": "cus_TestCustomer0001",
                        "stripe_checkout_session_id": session_id,
                        "status": "pending_payment",
                        "amount_total": 2000,
                        "currency": "eur",
                        "lines": [
                            {"product_id": "pro-month", "quantity": 1, "amount": 2000},
                        ],
                        "created_at": now,
                        "updated_at": now,
                    }
                    for index, session_id in enumerate(session_ids)
                ],
            )
        await asyncio.to_thread(first.start)
        second = ServiceProcess("facturation_service", env, tmp_path, port=first.port)
        started = time.monotonic()
        try:
            senders = Senders(first.url, deliveries)
            sending = asyncio.create_task(senders.run())
            while senders.acknowledged < len(deliveries) * KILL_AFTER_SHARE:
                assert not sending.done()
                await asyncio.sleep(0.01)
            await asyncio.to_thread(first.kill)
            killed_at = senders.acknowledged
            await asyncio.to_thread(second.start)
            await sending

            deadline = time.monotonic() + 120
            statuses = await journal_statuses(database)
            while statuses.get("pending") or statuses.get("processing"):
                assert time.monotonic() < deadline, statuses
                await asyncio.sleep(0.25)
                statuses = await journal_statuses(database)
            elapsed = time.monotonic() - started

            async with database.sessionmaker() as session:
                invoices = (await session.scalars(select(Invoice))).all()
                orders = (await session.scalars(select(Order))).all()
                granted = (
                    await session.execute(
                        select(Entitlement.source_id, Entitlement.product_id, Entitlement.status)
                    )
                ).all()
        finally:
            await asyncio.to_thread(first.stop)
            await asyncio.to_thread(second.stop)
            await database.dispose()

    print(
        f"\nchaos: {len(events)} events, {len(deliveries) - len(events)} duplicates, "
        f"{len(deliveries)} deliveries by {SENDERS} senders; SIGKILL after {killed_at} "
        f"acknowledgements; faults seen by the senders {dict(senders.faults)}; "
        f"drained in {elapsed:.1f} s"
    )
    assert statuses == {"processed": len(events)}
    assert sorted(invoice.id for invoice in invoices) == invoice_ids
    assert {(invoice.status, invoice.amount_remaining) for invoice in invoices} == {("paid", 0)}
    assert {order.status for order in orders} == {"paid"}
    assert sorted(str(order.stripe_checkout_session_id) for order in orders) == session_ids
    assert all(order.stripe_invoice_id == f"in_chaos{order.id[-5:]}" for order in orders)
    # Fulfilled once each: one grant per order, whatever the duplicates and the SIGKILL.
    assert all(order.fulfilled_at is not None for order in orders)
    assert sorted(granted) == sorted((order.id, "pro-month", "active") for order in orders)
    assert sum(senders.faults.values()) > 0
