"""``python -m facturation_service worker``: two worker processes at once apply one journaled
backlog, each event exactly once, and each stops cleanly on SIGTERM."""

from __future__ import annotations

import asyncio
import random
import time
from pathlib import Path

from sqlalchemy import func, select

from facturation_service.models import Invoice, WebhookEvent
from shared import Database
from tests.support import stripe_events
from tests.support.databases import fresh_database
from tests.support.processes import ServiceProcess
from tests.support.webhook_app import journal_event


async def test_two_worker_processes_apply_one_backlog_exactly_once(tmp_path: Path) -> None:
    async with fresh_database("worker_process", tmp_path) as database_url:
        env = {
            "FACTURATION_DATABASE_URL": database_url,
            "INTERNAL_TOKEN": "e2e-worker-internal-token",
            "STRIPE_API_BASE": "http://127.0.0.1:9",  # never called: snapshots are trusted
            "FACTURATION_WEBHOOK_POLL_SECONDS": "0.1",
            "FACTURATION_WEBHOOK_BATCH_SIZE": "8",
            "LOG_LEVEL": "INFO",
        }
        await ServiceProcess("facturation_service", env, tmp_path).migrate()
        database = Database(database_url)
        created = int(time.time()) - 600
        events = []
        for index in range(40):  # each invoice open then paid, delivered in a shuffled order
            invoice_id = f"in_worker_process_{index:04d}"
            for offset, (type_, status) in enumerate(
                (("invoice.finalized", "open"), ("invoice.paid", "paid"))
            ):
                invoice = stripe_events.invoice(status, invoice_id=invoice_id, created=created)
                events.append(stripe_events.event(type_, invoice, created=created + offset))
        random.Random(14).shuffle(events)

        workers = [ServiceProcess("facturation_service", env, tmp_path, command="worker")]
        workers.append(ServiceProcess("facturation_service", env, tmp_path, command="worker"))
        try:
            for worker in workers:
                worker.start(wait=False)
            # Both running before the backlog appears, so both claim from it.
            deadline = time.monotonic() + 30
            while not all("webhook worker started" in worker.logs() for worker in workers):
                assert time.monotonic() < deadline, "\n".join(w.logs() for w in workers)
                await asyncio.sleep(0.05)
            for event in events:
                await journal_event(database, event)
            deadline = time.monotonic() + 60
            processed = 0
            while processed < len(events) and time.monotonic() < deadline:
                await asyncio.sleep(0.1)
                async with database.sessionmaker() as session:
                    processed = (
                        await session.scalar(
                            select(func.count()).where(WebhookEvent.status == "processed")
                        )
                        or 0
                    )
            assert processed == len(events), "\n".join(worker.logs() for worker in workers)
        finally:
            for worker in workers:
                await asyncio.to_thread(worker.stop)
        try:
            async with database.sessionmaker() as session:
                outcomes = (
                    await session.execute(select(WebhookEvent.status, WebhookEvent.attempts))
                ).all()
                statuses = (await session.scalars(select(Invoice.status))).all()
        finally:
            await database.dispose()

    # Claimed once each: a second claim would have counted a second attempt.
    assert sorted(set(outcomes)) == [("processed", 1)]
    assert statuses == ["paid"] * 40
    for worker in workers:
        assert worker.process is not None
        assert worker.process.returncode == 0, worker.logs()
        assert "webhook worker stopped" in worker.logs()
