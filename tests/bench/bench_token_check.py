"""Benchmark: auth's token check (``GET /internal/v1/tokens/check``), what the gateway asks on a
cache miss and nginx ``auth_request`` on every request.

Starts the stack (PostgreSQL when TEST_DATABASE_URL is set, SQLite otherwise; facturation's
place taken by an nginx that answers 200), logs in once, then runs wrk with one valid token
straight at auth for ``--duration`` seconds after 2 s of warm-up, ``--rounds`` times. Prints
checks per second and auth's CPU per check (user + system, from ``/proc``): one EdDSA
verification and one revocation lookup (``Database.row_exists``) each.

    .venv/bin/python -m tests.bench.bench_token_check [--connections 16] [--rounds 3]
"""

from __future__ import annotations

import argparse
import asyncio
import re
import statistics
import subprocess
import tempfile
from pathlib import Path

from tests.bench.bench_gateway import check_tools, login, start_upstream
from tests.bench.processes import cpu_seconds, machine_speed
from tests.support.databases import using_postgres
from tests.support.stack import start_stack


def measure(
    url: str, token: str, internal_token: str, connections: int, duration: float, pid: int
) -> tuple[float, float]:
    """Checks per second and auth's CPU per check in µs, from one wrk run."""
    base = [
        "wrk",
        "-t",
        "1",
        "-c",
        str(connections),
        "-H",
        f"Authorization: Bearer {token}",
        "-H",
        f"X-Internal-Token: {internal_token}",
    ]
    subprocess.run([*base, "-d", "2s", url], capture_output=True, check=True)  # warm-up
    before = cpu_seconds([pid])
    out = subprocess.run(
        [*base, "-d", f"{duration:g}s", url], capture_output=True, text=True, check=True
    ).stdout
    cpu = cpu_seconds([pid]) - before
    rps = re.search(r"Requests/sec:\s+([\d.]+)", out)
    requests = re.search(r"(\d+) requests in", out)
    if rps is None or requests is None:
        raise RuntimeError(f"unexpected wrk output:\n{out}")
    if failed := re.search(r"Non-2xx or 3xx responses: (\d+)", out):
        raise RuntimeError(f"{failed.group(1)} checks did not answer 200")
    return float(rps.group(1)), cpu / int(requests.group(1)) * 1e6


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--duration", type=float, default=8.0, help="seconds per round")
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    check_tools()
    database = "PostgreSQL" if using_postgres() else "SQLite"
    print(f"bench_token_check: {database}, auth workers 1; {machine_speed()}")
    with tempfile.TemporaryDirectory(prefix="bench-token-check-") as tmp:
        workdir = Path(tmp)
        upstream, upstream_url = start_upstream(workdir)
        try:
            async with start_stack(
                workdir,
                facturation_url=upstream_url,
                auth_env={"LOGIN_MAX_ATTEMPTS_PER_ADDRESS": "0"},
                extra_env={"LOG_LEVEL": "WARNING", "WORKERS": "1"},
            ) as stack:
                token = await login(stack.url)
                assert stack.auth.process is not None
                url = f"{stack.auth.url}/internal/v1/tokens/check"
                rounds = [
                    await asyncio.to_thread(
                        measure,
                        url,
                        token,
                        stack.internal_token,
                        args.connections,
                        args.duration,
                        stack.auth.process.pid,
                    )
                    for _ in range(args.rounds)
                ]
        finally:
            upstream.terminate()
            upstream.wait()
    for index, (rps, cpu_us) in enumerate(rounds, 1):
        print(f"round {index}: {rps:,.0f} checks/s, auth CPU {cpu_us:.0f} µs a check")
    print(
        f"median of {len(rounds)} rounds at {args.connections} connections: "
        f"{statistics.median(r for r, _ in rounds):,.0f} checks/s, "
        f"auth CPU {statistics.median(c for _, c in rounds):.0f} µs a check"
    )


if __name__ == "__main__":
    asyncio.run(main())
