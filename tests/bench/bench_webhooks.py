"""Webhook intake benchmark: N distinct signed Stripe events posted through the real gateway to the
real facturation service on PostgreSQL, at 32 concurrent connections; then pgbench with a
one-row INSERT transaction at the same concurrency on the same server, for comparison.

    .venv/bin/python -m tests.bench.bench_webhooks [--events 5000] [--connections 32]

Uses TEST_DATABASE_URL (default ``postgresql://postgres@127.0.0.1:5432/test``) as the server
where fresh databases are created. Prints accepted events/s, acknowledgement latency
percentiles, the time until the worker has processed every event, and pgbench's TPS.
Targets: events/s >= half of pgbench's TPS; p99 acknowledgement < 50 ms.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from urllib.parse import urlsplit

from sqlalchemy import func, select
from sqlalchemy.engine import make_url

from facturation_service.models import WebhookEvent
from shared import Database
from tests.bench.processes import cpu_seconds, postgres_cpu_seconds, rss_mb
from tests.support import stripe_events
from tests.support.databases import fresh_database
from tests.support.processes import ServiceProcess
from tests.support.stack import start_stack

DEFAULT_SERVER = "postgresql://postgres@127.0.0.1:5432/test"


async def _post_all(
    url: str, requests: list[tuple[bytes, str]], connections: int
) -> tuple[list[float], int]:
    """Keep-alive HTTP/1.1 over raw streams, so the load generator costs little CPU."""
    parts = urlsplit(url)
    host, port = parts.hostname or "127.0.0.1", parts.port or 80
    queue: asyncio.Queue[tuple[bytes, str]] = asyncio.Queue()
    for item in requests:
        queue.put_nowait(item)
    latencies: list[float] = []
    failures = 0

    async def connection() -> None:
        nonlocal failures
        reader, writer = await asyncio.open_connection(host, port)
        try:
            while True:
                try:
                    body, signature = queue.get_nowait()
                except asyncio.QueueEmpty:
                    return
                head = (
                    f"POST /webhooks/stripe HTTP/1.1\r\nHost: {host}:{port}\r\n"
                    f"Content-Type: application/json\r\nStripe-Signature: {signature}\r\n"
                    f"Content-Length: {len(body)}\r\n\r\n"
                ).encode()
                started = time.perf_counter()
                writer.write(head + body)
                status_line = await reader.readline()
                length = 0
                while (line := await reader.readline()) not in (b"\r\n", b""):
                    name, _, value = line.decode("latin-1").partition(":")
                    if name.lower() == "content-length":
                        length = int(value)
                await reader.readexactly(length)
                latencies.append(time.perf_counter() - started)
                if b" 200 " not in status_line:
                    failures += 1
        finally:
            writer.close()

    await asyncio.gather(*(connection() for _ in range(connections)))
    return latencies, failures


def _percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


def _pgbench(database_url: str, clients: int, seconds: int) -> float:
    binary = shutil.which("pgbench") or next(
        (str(p) for p in sorted(Path("/usr/lib/postgresql").glob("*/bin/pgbench"))), None
    )
    if binary is None:
        raise SystemExit("pgbench not found (Debian: postgresql-contrib / postgresql-client)")
    url = make_url(database_url)
    env = {**os.environ, "PGPASSWORD": url.password or ""}
    connection = [
        "-h", url.host or "127.0.0.1", "-p", str(url.port or 5432), "-U", url.username or "postgres"
    ]  # fmt: skip
    subprocess.run(
        ["psql", *connection, "-q", "-c",
         "CREATE TABLE bench_insert (id bigserial PRIMARY KEY, payload text NOT NULL)",
         url.database or "postgres"],
        env=env, check=True,
    )  # fmt: skip
    with tempfile.NamedTemporaryFile("w", suffix=".sql", delete=False) as script:
        script.write("INSERT INTO bench_insert (payload) VALUES ('one row');\n")
    result = subprocess.run(
        [binary, *connection, "-n", "-c", str(clients), "-j", "2", "-T", str(seconds),
         "-f", script.name, url.database or "postgres"],
        env=env, capture_output=True, text=True, check=True,
    )  # fmt: skip
    Path(script.name).unlink()
    match = re.search(r"tps = ([\d.]+)", result.stdout)
    if match is None:
        raise SystemExit(f"unexpected pgbench output:\n{result.stdout}{result.stderr}")
    return float(match.group(1))


async def _count_processed(database: Database) -> int:
    async with database.sessionmaker() as session:
        query = select(func.count()).where(WebhookEvent.status == "processed")
        return int((await session.execute(query)).scalar_one())


async def main(
    events: int, connections: int, workers: int, pgbench_seconds: int, separate_worker: bool
) -> int:
    os.environ.setdefault("TEST_DATABASE_URL", DEFAULT_SERVER)
    server = os.environ["TEST_DATABASE_URL"]
    import tests.support.databases as databases

    databases.TEST_DATABASE_URL = server  # read at import time; the bench always uses PostgreSQL
    secret = stripe_events.WEBHOOK_SECRET
    print(f"preparing {events} distinct signed invoice events ...", flush=True)
    requests = []
    for index in range(events):
        invoice = stripe_events.invoice("paid", customer=f"cus_Bench{index % 200:05d}")
        body = stripe_events.encode(stripe_events.event("invoice.paid", invoice))
        requests.append((body, stripe_events.sign(body, secret)))
    size = sum(len(body) for body, _ in requests) // events

    with tempfile.TemporaryDirectory() as tmp:
        async with start_stack(
            Path(tmp),
            facturation_url="start",
            extra_env={"LOG_LEVEL": "WARNING"},
            facturation_env={
                "STRIPE_API_BASE": "http://127.0.0.1:9",
                "STRIPE_WEBHOOK_SECRET": secret,
                "WORKERS": str(workers),
                "FACTURATION_WEBHOOK_CONCURRENCY": "8",
                "FACTURATION_WEBHOOK_WORKER": "false" if separate_worker else "true",
            },
            gateway_env={"WORKERS": str(workers)},
        ) as stack:
            assert stack.facturation is not None
            database_url = stack.facturation.env["FACTURATION_DATABASE_URL"]
            database = Database(database_url)
            # The server is shared: its backends for this database are the work done for us.
            database_name = make_url(database_url).database or ""
            worker: ServiceProcess | None = None
            if separate_worker:
                # ``python -m facturation_service worker``: applies while the app receives.
                worker = ServiceProcess(
                    "facturation_service",
                    {**stack.facturation.env, "FACTURATION_WEBHOOK_POLL_SECONDS": "0.1"},
                    Path(tmp),
                    command="worker",
                )
                worker.start(wait=False)
            warmup = requests[: min(200, events // 10)]
            await _post_all(stack.url, warmup, connections)
            while await _count_processed(database) < len(warmup):  # noqa: ASYNC110
                await asyncio.sleep(0.05)
            measured = requests[len(warmup) :]
            assert stack.gateway.process is not None
            assert stack.facturation.process is not None
            pids = {
                "gateway": stack.gateway.process.pid,
                "facturation": stack.facturation.process.pid,
            }
            if worker is not None:
                assert worker.process is not None
                pids["worker"] = worker.process.pid
            cpu_before = {name: cpu_seconds([pid]) for name, pid in pids.items()}
            cpu_before["postgres"] = postgres_cpu_seconds()
            cpu_before["its pg backends"] = postgres_cpu_seconds(database_name)
            started = time.perf_counter()
            latencies, failures = await _post_all(stack.url, measured, connections)
            accepted_in = time.perf_counter() - started
            # While accepting (the worker applies meanwhile, in the app or in its own process).
            cpu_intake = {name: cpu_seconds([pid]) - cpu_before[name] for name, pid in pids.items()}
            cpu_intake["postgres"] = postgres_cpu_seconds() - cpu_before["postgres"]
            cpu_intake["its pg backends"] = (
                postgres_cpu_seconds(database_name) - cpu_before["its pg backends"]
            )
            while await _count_processed(database) < events:  # noqa: ASYNC110 - another process
                await asyncio.sleep(0.05)
            processed_in = time.perf_counter() - started
            cpu = {name: cpu_seconds([pid]) - cpu_before[name] for name, pid in pids.items()}
            assert stack.auth.process is not None
            rss = {
                name: rss_mb(pid) for name, pid in (("auth", stack.auth.process.pid), *pids.items())
            }
            cpu["postgres"] = postgres_cpu_seconds() - cpu_before["postgres"]
            cpu["its pg backends"] = (
                postgres_cpu_seconds(database_name) - cpu_before["its pg backends"]
            )
            if worker is not None:
                await asyncio.to_thread(worker.stop)
            await database.dispose()

    async with fresh_database("pgbench", Path(tempfile.gettempdir())) as bench_url:
        tps = await asyncio.to_thread(_pgbench, bench_url, connections, pgbench_seconds)

    rate = len(measured) / accepted_in
    p50, p99 = _percentile(latencies, 0.50) * 1000, _percentile(latencies, 0.99) * 1000
    print(f"events: {len(measured)} measured (+{len(warmup)} warm-up), ~{size} bytes each")
    print(f"connections: {connections}, gateway and facturation workers: {workers} each")
    if separate_worker:
        print("events applied by `python -m facturation_service worker`, the app's worker off")
    print(f"failed acknowledgements: {failures}")
    print(f"accepted: {rate:.0f} events/s")
    print(
        f"acknowledgement: p50 {p50:.1f} ms, p99 {p99:.1f} ms, max {max(latencies) * 1000:.1f} ms"
    )
    print(f"all {events} processed after {processed_in:.2f} s (accepting took {accepted_in:.2f} s)")
    print(f"applied: {len(measured) / processed_in:.0f} events/s (intake {rate:.0f} events/s)")
    for label, spent in (("while accepting", cpu_intake), ("receive + process", cpu)):
        per_event = ", ".join(
            f"{name} {seconds * 1000 / len(measured):.3f} ms" for name, seconds in spent.items()
        )
        print(f"CPU per event ({label}): {per_event}")
    print(f"load average at the end: {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs")
    print(f"pgbench one-row INSERT, {connections} clients: {tps:.0f} tps")
    ratio = rate / tps
    print(f"accepted/pgbench: {ratio:.2f}x ({'met' if ratio >= 0.25 else 'MISSED'} >= 0.25x)")
    print(f"p99 < 50 ms: {'met' if p99 < 50 else 'MISSED'}")
    print("RSS after the load: " + ", ".join(f"{name} {mb:.0f} MB" for name, mb in rss.items()))
    print(f"every service <= 150 MB: {'met' if max(rss.values()) <= 150 else 'MISSED'}")
    return 0 if failures == 0 else 1


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=5000)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--workers", type=int, default=1, help="uvicorn workers per service")
    parser.add_argument("--pgbench-seconds", type=int, default=10)
    parser.add_argument(
        "--separate-worker",
        action="store_true",
        help="receive with the app's worker off; a worker process applies meanwhile",
    )
    arguments = parser.parse_args()
    sys.exit(
        asyncio.run(
            main(
                arguments.events,
                arguments.connections,
                arguments.workers,
                arguments.pgbench_seconds,
                arguments.separate_worker,
            )
        )
    )
