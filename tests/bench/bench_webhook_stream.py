"""A steady stream of Stripe deliveries rather than a burst: ``--rate`` distinct signed events a
second, each posted on its schedule through the real gateway to the real facturation service on
PostgreSQL, for ``--seconds``; the app applies them with its own worker, as deployed.

    .venv/bin/python -m tests.bench.bench_webhook_stream [--rate 200] [--seconds 10]
        [--give-way-rate 500]

Prints, second by second, the deliveries acknowledged and the events applied so far, then how
many were still to apply when the stream ended and how long the worker took to finish them, and
the CPU an event cost the gateway, facturation and PostgreSQL from the first delivery until the
last event was applied (``/proc``: a shared machine's load moves it less than the timings).
Target (issue 14's "applied keeps up with intake", for a stream this machine can carry): the
backlog when the stream ends is under one second of deliveries. ``bench_webhooks`` measures the
other case, the burst as fast as the machine can accept it, where the worker gives way.
``--give-way-rate`` sets the app's ``FACTURATION_WEBHOOK_GIVE_WAY_RATE``: a stream faster than
it is a burst the worker gives way to, for ``FACTURATION_WEBHOOK_GIVE_WAY_SECONDS`` (10) at most.

Uses TEST_DATABASE_URL (default ``postgresql://postgres@127.0.0.1:5432/test``) as the server
where fresh databases are created.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import tempfile
import time
from pathlib import Path

import httpx
from sqlalchemy import func, select

from facturation_service.models import WebhookEvent
from shared import Database
from tests.bench.deliveries import receiving_stack, signed_invoice_deliveries
from tests.bench.processes import cpu_seconds, postgres_cpu_seconds
from tests.support import stripe_events

DEFAULT_SERVER = "postgresql://postgres@127.0.0.1:5432/test"


async def _applied(database: Database) -> int:
    async with database.sessionmaker() as session:
        query = select(func.count()).where(WebhookEvent.status == "processed")
        return int((await session.execute(query)).scalar_one())


async def _stream(
    client: httpx.AsyncClient,
    deliveries: list[tuple[bytes, str]],
    rate: float,
    database: Database,
) -> tuple[list[tuple[int, int, int]], int, int, list[float]]:
    """Post each delivery at its time; every second, (second, acknowledged, applied). Returns
    those samples, the deliveries acknowledged 200 and those answered anything else, and the
    acknowledgements' latencies in seconds."""
    acknowledged = failed = 0
    latencies: list[float] = []

    async def post(body: bytes, signature: str) -> None:
        nonlocal acknowledged, failed
        headers = {"Stripe-Signature": signature, "Content-Type": "application/json"}
        sent = time.perf_counter()
        try:
            response = await client.post("/webhooks/stripe", content=body, headers=headers)
        except httpx.HTTPError:
            failed += 1
            return
        if response.status_code == 200:
            acknowledged += 1
            latencies.append(time.perf_counter() - sent)
        else:
            failed += 1

    samples: list[tuple[int, int, int]] = []
    posting: set[asyncio.Task[None]] = set()
    start = time.perf_counter()
    for index, (body, signature) in enumerate(deliveries):
        due = start + index / rate
        if (second := int(due - start)) > len(samples):
            samples.append((second, acknowledged, await _applied(database)))
        await asyncio.sleep(max(0.0, due - time.perf_counter()))
        task = asyncio.create_task(post(body, signature))
        posting.add(task)
        task.add_done_callback(posting.discard)
    await asyncio.gather(*posting)
    return samples, acknowledged, failed, latencies


async def main(rate: float, seconds: float, give_way_rate: float) -> int:
    os.environ.setdefault("TEST_DATABASE_URL", DEFAULT_SERVER)
    import tests.support.databases as databases

    databases.TEST_DATABASE_URL = os.environ["TEST_DATABASE_URL"]  # read at import time
    secret = stripe_events.WEBHOOK_SECRET
    total = int(rate * seconds)
    deliveries = signed_invoice_deliveries(total, secret)
    with tempfile.TemporaryDirectory() as folder:
        async with receiving_stack(
            Path(folder), secret, {"FACTURATION_WEBHOOK_GIVE_WAY_RATE": str(give_way_rate)}
        ) as stack:
            assert stack.facturation is not None
            url = stack.facturation.env["FACTURATION_DATABASE_URL"]
            database = Database(url)
            assert stack.gateway.process is not None
            assert stack.facturation.process is not None
            pids = {
                "gateway": stack.gateway.process.pid,
                "facturation": stack.facturation.process.pid,
            }

            def cpu() -> dict[str, float]:
                spent = {name: cpu_seconds([pid]) for name, pid in pids.items()}
                spent["PostgreSQL"] = postgres_cpu_seconds(database.engine.url.database)
                return spent

            limits = httpx.Limits(max_connections=256, max_keepalive_connections=256)
            try:
                async with httpx.AsyncClient(base_url=stack.url, limits=limits) as client:
                    before = cpu()
                    samples, acknowledged, failed, latencies = await _stream(
                        client, deliveries, rate, database
                    )
                    ended = time.perf_counter()
                    behind = acknowledged - await _applied(database)
                    while await _applied(database) < acknowledged:  # noqa: ASYNC110
                        await asyncio.sleep(0.02)
                    caught_up = time.perf_counter() - ended
                    after = cpu()
            finally:
                await database.dispose()
    print(
        f"{total} deliveries at {rate:g} a second for {seconds:g} s, the app's worker applying"
        f" (it gives way from {give_way_rate:g} a second)"
    )
    print("second  acknowledged  applied")
    for second, acked, applied in samples:
        print(f"{second:>6}  {acked:>12}  {applied:>7}")
    print(f"acknowledged: {acknowledged}; failed: {failed}")
    if latencies:
        latencies.sort()
        p50, p99 = (latencies[int(len(latencies) * q)] * 1000 for q in (0.5, 0.99))
        print(f"acknowledgement (Python client): p50 {p50:.1f} ms, p99 {p99:.1f} ms")
    print(
        f"when the stream ended: {behind} still to apply ({behind / rate:.2f} s of deliveries);"
        f" all applied {caught_up:.2f} s later"
    )
    per_event = {name: (after[name] - before[name]) / total * 1000 for name in before}
    print(
        "CPU per event, first delivery to last applied: "
        + ", ".join(f"{name} {ms:.3f} ms" for name, ms in per_event.items())
        + f"; {sum(per_event.values()):.3f} ms in all"
    )
    keeps_up = behind < rate
    print(f"applied keeps up with the stream: {'met' if keeps_up else 'MISSED'} (< {rate:g})")
    return 0 if failed == 0 and keeps_up else 1


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rate", type=float, default=200.0, help="deliveries a second")
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--give-way-rate", type=float, default=500.0)
    arguments = parser.parse_args()
    sys.exit(asyncio.run(main(arguments.rate, arguments.seconds, arguments.give_way_rate)))
