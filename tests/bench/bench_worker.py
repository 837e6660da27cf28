"""Apply-path benchmark, in one process: N distinct ``invoice.paid`` events journaled, then
applied by ``WebhookWorker``'s loop (claim, apply in batches, finish) with no intake running.
Prints applied events/s and the CPU per applied event of this process (``getrusage``) and of
PostgreSQL (``/proc``), the figures that do not move much with a shared machine's load.

    TEST_DATABASE_URL=postgresql://postgres@127.0.0.1:5432/test \
        .venv/bin/python -m tests.bench.bench_worker [--events 2000] [--profile out.prof]

Without ``TEST_DATABASE_URL`` it runs on SQLite (PostgreSQL's column then reads 0).
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import resource
import sys
import tempfile
import time
from pathlib import Path

import msgspec

from facturation_service.journal import EventEnvelope, JournalWriter
from facturation_service.worker import WebhookWorker, WorkerConfig
from shared import Database
from tests.bench.deliveries import all_applied, check_processed
from tests.bench.processes import postgres_cpu_seconds
from tests.support import stripe_events
from tests.support.databases import migrated_database, using_postgres

MIGRATIONS = Path(__file__).resolve().parents[2] / "facturation_service" / "migrations"


def _own_cpu() -> tuple[float, float]:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime, usage.ru_stime


async def _journal(database: Database, events: int) -> None:
    writer = JournalWriter(database.engine)
    records = []
    for index in range(events):
        invoice = stripe_events.invoice("paid", customer=f"cus_Bench{index % 200:05d}")
        payload = stripe_events.encode(stripe_events.event("invoice.paid", invoice)).decode()
        envelope = msgspec.json.decode(payload, type=EventEnvelope)
        records.append(writer.record(envelope, payload, handled=True))
    await asyncio.gather(*records)
    await writer.drain()


async def _applied(database: Database, total: int) -> None:
    """Wait until nothing is left to apply, then check that all ``total`` were processed."""
    while not await all_applied(database):  # noqa: ASYNC110
        await asyncio.sleep(0.02)
    await check_processed(database, total)


async def main(events: int, batch_size: int, profile: str | None) -> int:
    with tempfile.TemporaryDirectory() as tmp:
        async with migrated_database("bench_worker", MIGRATIONS, Path(tmp)) as url:
            database = Database(url)
            try:
                worker = WebhookWorker(database, WorkerConfig(batch_size=batch_size))
                # Warm-up: statement caches and prepared statements, as in a running service.
                await _journal(database, 200)
                async with worker.running():
                    await _applied(database, 200)
                await _journal(database, events)
                worker = WebhookWorker(database, WorkerConfig(batch_size=batch_size))
                profiler = cProfile.Profile() if profile else None
                cpu, pg, started = _own_cpu(), postgres_cpu_seconds(), time.perf_counter()
                if profiler:
                    profiler.enable()
                async with worker.running():
                    while not await all_applied(database):  # noqa: ASYNC110
                        await asyncio.sleep(0.02)
                elapsed = time.perf_counter() - started
                if profiler:
                    profiler.disable()
                    profiler.dump_stats(str(profile))
                (user, system), pg = _own_cpu(), postgres_cpu_seconds() - pg
                await _applied(database, 200 + events)
                user, system = user - cpu[0], system - cpu[1]
            finally:
                await database.dispose()
    backend = "PostgreSQL" if using_postgres() else "SQLite"
    print(f"{events} invoice.paid events applied on {backend} in {elapsed:.2f} s")
    print(f"applied: {events / elapsed:.0f} events/s (batch size {batch_size})")
    print(
        f"CPU per applied event: worker {(user + system) * 1000 / events:.3f} ms "
        f"(user {user * 1000 / events:.3f}, system {system * 1000 / events:.3f}), "
        f"PostgreSQL {pg * 1000 / events:.3f} ms"
    )
    return 0


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=2000)
    parser.add_argument("--batch-size", type=int, default=WorkerConfig().batch_size)
    parser.add_argument("--profile", help="write a cProfile of the apply phase here")
    arguments = parser.parse_args()
    sys.exit(asyncio.run(main(arguments.events, arguments.batch_size, arguments.profile)))
