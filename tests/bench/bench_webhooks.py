"""Webhook intake benchmark: N distinct signed Stripe events posted through the real gateway to the
real facturation service on PostgreSQL, at 32 concurrent connections; then pgbench with a
one-row INSERT transaction at the same concurrency on the same server, for comparison.

    .venv/bin/python -m tests.bench.bench_webhooks [--events 5000] [--connections 32] [--rounds 3]

Uses TEST_DATABASE_URL (default ``postgresql://postgres@127.0.0.1:5432/test``) as the server
where fresh databases are created. The load generator is wrk (C, like pgbench's client) with
``tests/bench/webhooks.lua``, which sends pre-built requests, each event once. Prints accepted
events/s, acknowledgement latency percentiles, the time until the worker has processed every
event, pgbench's TPS, the CPU per event of every process (wrk's too) and how the machine's two
cores were spent while accepting (idle included). Targets: events/s >= 0.25x pgbench's TPS;
p99 acknowledgement < 50 ms; applied events/s >= accepted events/s, printed beside the rate at
which the machine's CPUs can both receive and apply events (the floor under that target).

``--rounds N`` posts N fresh sets of events through the same stack, each followed by pgbench once
every event is applied, and prints each round's ratio, then the figures of the median round: on
a shared machine whose speed drifts, rounds of one run gave 0.17x to 0.25x. On a server whose
autovacuum is off (this machine's CI configuration; PostgreSQL's default is on) facturation's
database is vacuumed after each round's events are applied, before pgbench, as autovacuum
would have; the bench says so, and ``--no-vacuum`` measures without it.

Each measured phase (a round's intake, then its pgbench) starts once what the phase before it
wrote is on disk (``CHECKPOINT``, then ``sync``; ``--no-settle`` skips it): on a VM disk, a
round that began while the kernel still wrote back the last pgbench or VACUUM had its first
commits wait 150-260 ms. wrk corrects its latency percentiles for coordinated omission (a
request that took a multiple of the mean interval also counts the requests it held back), so
one such stall weighs on p99 far more than its own 32 answers would.

Needs Debian's ``wrk`` and ``pgbench`` (postgresql-contrib / postgresql-client).
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from urllib.parse import urlsplit

import msgspec
from sqlalchemy import text
from sqlalchemy.engine import make_url

from shared import Database
from tests.bench.deliveries import (
    all_applied,
    check_processed,
    receiving_stack,
    signed_invoice_deliveries,
)
from tests.bench.processes import (
    cpu_seconds,
    machine_cpu_seconds,
    machine_speed,
    postgres_cpu_seconds,
    rss_mb,
)
from tests.bench.rounds import median_round
from tests.support import stripe_events
from tests.support.databases import fresh_database
from tests.support.processes import ServiceProcess

DEFAULT_SERVER = "postgresql://postgres@127.0.0.1:5432/test"


_WRK_SCRIPT = Path(__file__).with_name("webhooks.lua")


class Posted(msgspec.Struct, frozen=True):
    """What wrk measured: from its first request to the last distinct event's answer (its
    clock is Python's ``time.perf_counter``), and the answers' latency (redeliveries included,
    a few dozen out of thousands)."""

    first: float
    last: float
    answered: int
    failed: int
    redelivered: int
    p50_ms: float
    p99_ms: float
    max_ms: float


def _requests_file(url: str, requests: list[tuple[bytes, str]], folder: Path) -> Path:
    """Whole HTTP/1.1 requests, each after a line with its length: wrk sends them as they are."""
    parts = urlsplit(url)
    host = f"{parts.hostname or '127.0.0.1'}:{parts.port or 80}"
    path = Path(tempfile.mkstemp(suffix=".http", dir=folder)[1])
    with path.open("wb") as file:
        for body, signature in requests:
            head = (
                f"POST /webhooks/stripe HTTP/1.1\r\nHost: {host}\r\n"
                f"Content-Type: application/json\r\nStripe-Signature: {signature}\r\n"
                f"Content-Length: {len(body)}\r\n\r\n"
            ).encode()
            file.write(b"%d\n" % (len(head) + len(body)) + head + body)
    return path


async def _post_all(
    url: str, requests: Path, connections: int, mark: Callable[[str, int], None] | None = None
) -> Posted:
    """Each request of the file once, over ``connections`` keep-alive connections, by wrk (C:
    the load generator takes little of the two cores; the Python one it replaced took 0.03 ms
    per event, more than a third of the gateway's own CPU). ``mark`` is called with "started"
    and "finished" and wrk's pid as wrk writes them (its first request, its last answer)."""
    process = await asyncio.create_subprocess_exec(
        "wrk", "-t", "1", "-c", str(connections), "-d", "600s", "--timeout", "10s",
        "-s", str(_WRK_SCRIPT), url, "--", str(requests),
        stdout=asyncio.subprocess.PIPE,
    )  # fmt: skip
    assert process.stdout is not None
    output = []
    async for line in process.stdout:
        output.append(line.decode())
        if line in (b"started\n", b"finished\n") and mark is not None:
            mark(line.decode().strip(), process.pid)
        if line == b"finished\n":
            process.send_signal(signal.SIGINT)  # wrk would sleep out -d
    await process.wait()
    found = next((line for line in output if line.startswith("result ")), None)
    if found is None:
        raise SystemExit("unexpected wrk output:\n" + "".join(output))
    values = dict(field.split("=") for field in found.split()[1:])
    if int(values["errors"]):
        raise SystemExit(f"wrk: {values['errors']} socket errors or timeouts")
    return Posted(
        first=float(values["first"]),
        last=float(values["last"]),
        answered=int(values["answered"]),
        failed=int(values["failed"]),
        redelivered=int(values["redelivered"]),
        p50_ms=int(values["p50"]) / 1000,
        p99_ms=int(values["p99"]) / 1000,
        max_ms=int(values["max"]) / 1000,
    )


def _counters(pids: dict[str, int], database_name: str) -> dict[str, float]:
    """CPU seconds so far: each process (and its children), PostgreSQL (all of it, and the
    backends of the bench's database), and the machine by kind (``machine <kind>``)."""
    values = {name: cpu_seconds([pid]) for name, pid in pids.items()}
    values["postgres"] = postgres_cpu_seconds()
    values["its pg backends"] = postgres_cpu_seconds(database_name)
    values.update({f"machine {kind}": s for kind, s in machine_cpu_seconds().items()})
    return values


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
         "SET client_min_messages TO warning; CREATE TABLE IF NOT EXISTS bench_insert"
         " (id bigserial PRIMARY KEY, payload text NOT NULL)",
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


async def _checkpoints_begun(database: Database) -> int:
    """PostgreSQL's checkpoints so far, timed or requested (a WAL-size checkpoint under load makes
    each page's first change after it write the whole page to the WAL: the commits behind it
    wait longer, which shows in the acknowledgements' tail)."""
    async with database.sessionmaker() as session:
        query = text("SELECT checkpoints_timed + checkpoints_req FROM pg_stat_bgwriter")
        return int((await session.execute(query)).scalar_one())


async def _autovacuum_on(database: Database) -> bool:
    async with database.sessionmaker() as session:
        setting = (await session.execute(text("SHOW autovacuum"))).scalar_one()
        return bool(setting == "on")


async def _vacuum(database: Database) -> None:
    """What autovacuum would do between two rounds: the worker's claims and finishes left two
    dead versions of every event (each update non-HOT: ``status`` is indexed), and the next
    round's inserts cost PostgreSQL half as much again per event among them (0.047 -> 0.072 ms
    in one run)."""
    async with database.engine.connect() as connection:
        autocommit = await connection.execution_options(isolation_level="AUTOCOMMIT")
        await autocommit.exec_driver_sql("VACUUM (ANALYZE)")


def _unwritten_mb() -> float:
    """The machine's file data not yet on disk: dirty, or being written back."""
    fields = dict(line.split(":", 1) for line in Path("/proc/meminfo").read_text().splitlines())
    return sum(int(fields[name].split()[0]) for name in ("Dirty", "Writeback")) / 1024


async def _settle(database: Database) -> float:
    """Put what the previous phase wrote on disk before the next is measured: PostgreSQL's
    dirty buffers (CHECKPOINT), then the kernel's (sync). Returns the MB that were waiting.

    Without it a phase starts while the disk still writes the last one's 40-140 MB (the
    worker's updates, VACUUM, pgbench): on a VM disk the first commits then waited 150-260 ms
    for their log flush, and wrk corrects its percentiles for coordinated omission, so one such
    stall of the 32 connections lifted the round's p99 from 25-29 to 77-219 ms."""
    waiting = _unwritten_mb()
    async with database.engine.connect() as connection:
        autocommit = await connection.execution_options(isolation_level="AUTOCOMMIT")
        await autocommit.exec_driver_sql("CHECKPOINT")
    await asyncio.to_thread(os.sync)
    return waiting


class Round(msgspec.Struct, frozen=True):
    """One round: the events posted through the stack, then pgbench on the same server."""

    posted: Posted
    unwritten_mb: float | None
    """File data the kernel still had to write when the round began (``None``: not settled)."""
    checkpoints: int
    """Checkpoints PostgreSQL began while the round's events were being accepted."""
    measured: int
    processed_in: float
    cpu_intake: dict[str, float]
    cpu: dict[str, float]
    tps: float

    @property
    def rate(self) -> float:
        return self.measured / (self.posted.last - self.posted.first)

    @property
    def ratio(self) -> float:
        return self.rate / self.tps


async def _intake_round(
    stack_url: str,
    requests: Path,
    total: int,
    measured: int,
    pids: dict[str, int],
    database: Database,
    database_name: str,
    connections: int,
    pgbench: Callable[[], float],
    *,
    vacuum: bool,
    settle: bool,
) -> Round:
    """Post the file's events, wait until the journal holds ``total`` processed events (the CPU
    spent while accepting, and until everything was applied), vacuum facturation's database if
    ``vacuum``, then run ``pgbench``; each of the two measured phases after :func:`_settle` if
    ``settle``."""
    marks: dict[str, dict[str, float]] = {}

    def mark(event: str, generator: int) -> None:
        marks[event] = {**_counters(pids, database_name), "wrk": cpu_seconds([generator])}

    unwritten = await _settle(database) if settle else None
    checkpoints = await _checkpoints_begun(database)
    posted = await _post_all(stack_url, requests, connections, mark)
    checkpoints = await _checkpoints_begun(database) - checkpoints
    # While accepting (the worker applies meanwhile, in the app or in its own process).
    cpu_intake = {
        name: marks["finished"][name] - marks["started"][name] for name in marks["started"]
    }
    while not await all_applied(database):  # noqa: ASYNC110 - another process
        await asyncio.sleep(0.05)
    processed_in = time.perf_counter() - posted.first
    done = _counters(pids, database_name)
    await check_processed(database, total)
    cpu = {name: done[name] - marks["started"][name] for name in done}
    if vacuum:
        await _vacuum(database)
    if settle:
        await _settle(database)
    tps = await asyncio.to_thread(pgbench)
    return Round(posted, unwritten, checkpoints, measured, processed_in, cpu_intake, cpu, tps)


async def main(
    events: int,
    connections: int,
    workers: int,
    pgbench_seconds: int,
    separate_worker: bool,
    rounds: int,
    no_vacuum: bool,
    no_settle: bool,
) -> int:
    os.environ.setdefault("TEST_DATABASE_URL", DEFAULT_SERVER)
    server = os.environ["TEST_DATABASE_URL"]
    import tests.support.databases as databases

    databases.TEST_DATABASE_URL = server  # read at import time; the bench always uses PostgreSQL
    if shutil.which("wrk") is None:
        raise SystemExit("wrk not found: apt-get update && apt-get install -y wrk")
    secret = stripe_events.WEBHOOK_SECRET
    warmup = min(200, events // 10)
    measured = events - warmup
    print(f"preparing {warmup + measured * rounds} distinct signed invoice events ...", flush=True)
    requests = signed_invoice_deliveries(warmup + measured * rounds, secret)
    size = sum(len(body) for body, _ in requests) // len(requests)

    results: list[Round] = []
    with tempfile.TemporaryDirectory() as folder:
        tmp = Path(folder)
        async with (
            fresh_database("pgbench", tmp) as bench_url,
            receiving_stack(
                tmp,
                secret,
                {
                    "WORKERS": str(workers),
                    "FACTURATION_WEBHOOK_CONCURRENCY": "8",
                    "FACTURATION_WEBHOOK_WORKER": "false" if separate_worker else "true",
                },
                gateway_env={"WORKERS": str(workers)},
            ) as stack,
        ):
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
                    tmp,
                    command="worker",
                )
                worker.start(wait=False)
            try:
                await _post_all(
                    stack.url, _requests_file(stack.url, requests[:warmup], tmp), connections
                )
                while not await all_applied(database):  # noqa: ASYNC110
                    await asyncio.sleep(0.05)
                await check_processed(database, warmup)
                # A server with autovacuum off (this machine's CI configuration) never reclaims
                # the worker's dead rows: every round after the first inserts among them. Unless
                # told otherwise, the bench does what autovacuum would, between rounds.
                vacuum = not no_vacuum and not await _autovacuum_on(database)
                if vacuum:
                    print(
                        "PostgreSQL's autovacuum is off on this server: facturation's database is "
                        "vacuumed once each round's events are applied, before pgbench "
                        "(--no-vacuum: never)",
                        flush=True,
                    )
                if not no_settle:
                    print(
                        "each round's intake and its pgbench start once the data written before "
                        "them is on disk: CHECKPOINT, then sync (--no-settle: never)",
                        flush=True,
                    )
                assert stack.gateway.process is not None
                assert stack.facturation.process is not None
                pids = {
                    "gateway": stack.gateway.process.pid,
                    "facturation": stack.facturation.process.pid,
                }
                if worker is not None:
                    assert worker.process is not None
                    pids["worker"] = worker.process.pid
                # Rounds alternate with pgbench, each once every event is applied (the stack idle):
                # a shared machine that slows down for a while weighs on both sides of a ratio.
                for number in range(rounds):
                    first = warmup + number * measured
                    batch = _requests_file(stack.url, requests[first : first + measured], tmp)
                    result = await _intake_round(
                        stack.url,
                        batch,
                        first + measured,
                        measured,
                        pids,
                        database,
                        database_name,
                        connections,
                        functools.partial(_pgbench, bench_url, connections, pgbench_seconds),
                        vacuum=vacuum,
                        settle=not no_settle,
                    )
                    results.append(result)
                    if rounds > 1:
                        print(
                            f"round {number + 1}: accepted {result.rate:.0f} events/s, "
                            f"pgbench {result.tps:.0f} tps, {result.ratio:.2f}x; "
                            f"ack p99 {result.posted.p99_ms:.1f} ms; PostgreSQL checkpoints begun "
                            f"while accepting: {result.checkpoints}"
                            + (
                                ""
                                if result.unwritten_mb is None
                                else f"; {result.unwritten_mb:.0f} MB written before it"
                            ),
                            flush=True,
                        )
                assert stack.auth.process is not None
                rss = {
                    name: rss_mb(pid)
                    for name, pid in (("auth", stack.auth.process.pid), *pids.items())
                }
            finally:
                # Also when a round fails: no worker process outlives the bench.
                if worker is not None:
                    await asyncio.to_thread(worker.stop)
                await database.dispose()

    _report(results, size, connections, workers, separate_worker, rss)
    return 0 if all(result.posted.failed == 0 for result in results) else 1


def _report(
    results: list[Round],
    size: int,
    connections: int,
    workers: int,
    separate_worker: bool,
    rss: dict[str, float],
) -> None:
    """The figures of the median round (by its ratio to pgbench), and of all rounds."""
    middle = median_round(results, lambda result: result.ratio)
    posted, measured = middle.posted, middle.measured
    if len(results) > 1:
        print(f"median round of {len(results)} (by accepted/pgbench):")
    print(f"events: {measured} measured a round, ~{size} bytes each")
    print(
        f"connections: {connections} (wrk, one thread), "
        f"gateway and facturation workers: {workers} each"
    )
    if separate_worker:
        print("events applied by `python -m facturation_service worker`, the app's worker off")
    failures = sum(result.posted.failed for result in results)
    redelivered = sum(result.posted.redelivered for result in results)
    print(f"failed acknowledgements: {failures} (and {redelivered} redeliveries at the end)")
    if middle.unwritten_mb is not None:
        print(f"data written to disk before the round began: {middle.unwritten_mb:.0f} MB")
    print(f"accepted: {middle.rate:.0f} events/s")
    print(
        f"acknowledgement: p50 {posted.p50_ms:.1f} ms, p99 {posted.p99_ms:.1f} ms, "
        f"max {posted.max_ms:.1f} ms"
    )
    accepted_in = posted.last - posted.first
    print(
        f"all {measured} processed after {middle.processed_in:.2f} s "
        f"(accepting took {accepted_in:.2f} s)"
    )
    applied = measured / middle.processed_in
    print(f"applied: {applied:.0f} events/s (intake {middle.rate:.0f} events/s)")
    _report_keeping_up(middle, applied)
    for label, spent in (("while accepting", middle.cpu_intake), ("receive + process", middle.cpu)):
        per_event = ", ".join(
            f"{name} {seconds * 1000 / measured:.3f} ms"
            for name, seconds in spent.items()
            if not name.startswith("machine ")
        )
        print(f"CPU per event ({label}): {per_event}")
    cpu_intake = middle.cpu_intake
    window = sum(cpu_intake[name] for name in cpu_intake if name.startswith("machine "))
    kinds = ", ".join(
        f"{name.removeprefix('machine ')} {seconds / window * 100:.0f} %"
        for name, seconds in cpu_intake.items()
        if name.startswith("machine ") and seconds
    )
    print(f"the machine's CPU while accepting, by kind: {kinds}")
    print(
        f"load average at the end: {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs; "
        + machine_speed()
    )
    print(f"pgbench one-row INSERT, {connections} clients: {middle.tps:.0f} tps")
    ratio = middle.ratio
    print(f"accepted/pgbench: {ratio:.2f}x ({'met' if ratio >= 0.25 else 'MISSED'} >= 0.25x)")
    p99 = max(result.posted.p99_ms for result in results)
    print(f"p99 < 50 ms (every round): {'met' if p99 < 50 else 'MISSED'}")
    print("RSS after the load: " + ", ".join(f"{name} {mb:.0f} MB" for name, mb in rss.items()))
    print(f"every service <= 150 MB: {'met' if max(rss.values()) <= 150 else 'MISSED'}")


def _report_keeping_up(middle: Round, applied: float) -> None:
    """Whether the worker applied events as fast as they were accepted, and the floor under it:
    the CPU that receiving and applying one event costs the services and PostgreSQL together
    (the load generator left out) bounds the rate at which this machine's CPUs can do both."""
    spent = sum(
        seconds
        for name, seconds in middle.cpu.items()
        # (PostgreSQL's backends are part of its total.)
        if name not in ("wrk", "its pg backends") and not name.startswith("machine ")
    )
    per_event = spent / middle.measured
    cpus = os.cpu_count() or 1
    target_rate = 0.25 * middle.tps
    print(
        f"receiving and applying an event: {per_event * 1000:.3f} ms of CPU (services and"
        f" PostgreSQL), so {cpus} CPUs receive and apply at most {cpus / per_event:.0f} events/s;"
        f" intake at the 0.25x target is {target_rate:.0f} events/s"
    )
    verdict = "met" if applied >= middle.rate else "MISSED"
    print(
        f"applied keeps up with intake: {verdict} ({applied:.0f} against {middle.rate:.0f}"
        " events/s)"
    )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=5000)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--workers", type=int, default=1, help="uvicorn workers per service")
    parser.add_argument("--pgbench-seconds", type=int, default=10)
    parser.add_argument(
        "--rounds",
        type=int,
        default=1,
        help="intake rounds, each followed by pgbench; figures of the median round",
    )
    parser.add_argument(
        "--separate-worker",
        action="store_true",
        help="receive with the app's worker off; a worker process applies meanwhile",
    )
    parser.add_argument(
        "--no-vacuum",
        action="store_true",
        help="never vacuum between rounds, even on a server whose autovacuum is off",
    )
    parser.add_argument(
        "--no-settle",
        action="store_true",
        help="start each measured phase without first writing the last one's data to disk",
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
                arguments.rounds,
                arguments.no_vacuum,
                arguments.no_settle,
            )
        )
    )
