"""Token checks of existing users during a registration burst: p50/p99 with no burst, and with a
burst under each configuration of auth's bounds.

    .venv/bin/python -m tests.bench.bench_registration_burst [--seconds 10] [--checkers 4]
        [--burst 32] [--logs DIR]

Real processes on loopback: auth (argon2id at its production cost), the echo upstream as
facturation, and a gateway that believes ``X-Forwarded-For`` from 127.0.0.1 and caches no token
decision, so every request below is a real token check by auth. ``--checkers`` existing users
each send ``GET /api/v1/billing/invoices`` in a loop; ``--burst`` clients register new users as
fast as they can (ignoring ``Retry-After``, as an attacker would), through the same gateway, for
the same time, from a process of their own.

Scenarios, each on a fresh stack:
  no burst                      the reference
  one address, bounds on        the burst comes from one address (the registration limit holds)
  many addresses, bounds on     every registration from its own address: only the hashing bound
  many addresses, bounds off    REGISTER_MAX_ATTEMPTS_PER_ADDRESS=0 and no hashing bound: the
                                code before the bounds existed
Databases: PostgreSQL at TEST_DATABASE_URL when set, SQLite otherwise.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import itertools
import multiprocessing
import tempfile
import time
import uuid
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import httpx

from tests.support.stack import start_stack

BOUNDS_OFF = {"REGISTER_MAX_ATTEMPTS_PER_ADDRESS": "0", "ARGON2_MAX_CONCURRENT": "256"}
PASSWORD = "correct-horse-battery"


@dataclass
class Scenario:
    name: str
    burst: bool
    many_addresses: bool = False
    auth_env: dict[str, str] | None = None


SCENARIOS = [
    Scenario("no burst", burst=False),
    Scenario("one address, bounds on", burst=True),
    Scenario("many addresses, bounds on", burst=True, many_addresses=True),
    Scenario("many addresses, bounds off", burst=True, many_addresses=True, auth_env=BOUNDS_OFF),
]


@dataclass
class Result:
    scenario: str
    checks: int
    p50_ms: float
    p99_ms: float
    max_ms: float
    check_errors: int
    burst: dict[int, int]


def _percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))] * 1000


async def _user(http: httpx.AsyncClient, address: str) -> str:
    email = f"bench-{uuid.uuid4().hex[:12]}@example.com"
    headers = {"X-Forwarded-For": address}
    registered = await http.post(
        "/api/v1/auth/register",
        json={"email": email, "password": PASSWORD, "name": "Bench"},
        headers=headers,
    )
    registered.raise_for_status()
    login = await http.post(
        "/api/v1/auth/login", json={"email": email, "password": PASSWORD}, headers=headers
    )
    login.raise_for_status()
    token: str = login.json()["access_token"]
    return token


async def _check_loop(
    http: httpx.AsyncClient, token: str, until: float, latencies: list[float], errors: list[int]
) -> None:
    headers = {"Authorization": f"Bearer {token}", "X-Forwarded-For": "198.51.100.7"}
    while time.monotonic() < until:
        started = time.perf_counter()
        response = await http.get("/api/v1/billing/invoices", headers=headers)
        latencies.append(time.perf_counter() - started)
        if response.status_code != 200:
            errors.append(response.status_code)


async def _register_loop(
    http: httpx.AsyncClient,
    until: float,
    addresses: itertools.count[int] | None,
    statuses: collections.Counter[int],
) -> None:
    while time.monotonic() < until:
        address = "203.0.113.66"
        if addresses is not None:
            n = next(addresses)
            address = f"10.{n // 62500 % 250}.{n // 250 % 250}.{n % 250 + 1}"
        try:
            response = await http.post(
                "/api/v1/auth/register",
                json={
                    "email": f"burst-{uuid.uuid4().hex[:12]}@example.com",
                    "password": PASSWORD,
                    "name": "Burst",
                },
                headers={"X-Forwarded-For": address},
            )
            statuses[response.status_code] += 1
        except httpx.HTTPError:
            statuses[0] += 1


async def _burst(url: str, seconds: float, clients: int, many_addresses: bool) -> dict[int, int]:
    statuses: collections.Counter[int] = collections.Counter()
    until = time.monotonic() + seconds
    addresses = itertools.count() if many_addresses else None
    limits = httpx.Limits(max_connections=clients)
    async with httpx.AsyncClient(base_url=url, timeout=60, limits=limits) as http:
        await asyncio.gather(
            *(_register_loop(http, until, addresses, statuses) for _ in range(clients))
        )
    return dict(statuses)


def burst_process(url: str, seconds: float, clients: int, many_addresses: bool) -> dict[int, int]:
    """The burst in a process of its own: its client work must not slow the measuring one."""
    return asyncio.run(_burst(url, seconds, clients, many_addresses))


async def run(
    scenario: Scenario, seconds: float, checkers: int, burst: int, logs: Path | None
) -> Result:
    with tempfile.TemporaryDirectory() as temporary:
        workdir = Path(temporary)
        if logs is not None:
            workdir = logs / scenario.name.replace(" ", "-").replace(",", "")
            workdir.mkdir(parents=True, exist_ok=True)
        async with start_stack(
            workdir,
            auth_env={"LOGIN_MAX_ATTEMPTS_PER_ADDRESS": "0", **(scenario.auth_env or {})},
            gateway_env={
                "FORWARDED_ALLOW_IPS": "127.0.0.1",
                "GATEWAY_TOKEN_CACHE_SECONDS": "0",
                "GATEWAY_MAX_REQUESTS_PER_CLIENT": "10000",
            },
        ) as stack:
            limits = httpx.Limits(max_connections=checkers + 4)
            async with httpx.AsyncClient(base_url=stack.url, timeout=60, limits=limits) as http:
                tokens = [await _user(http, f"198.51.100.{10 + n}") for n in range(checkers)]
                # Warm-up: connections open, code paths hot.
                warm: list[float] = []
                await _check_loop(http, tokens[0], time.monotonic() + 1, warm, [])
                latencies: list[float] = []
                errors: list[int] = []
                statuses: dict[int, int] = {}
                spawn = multiprocessing.get_context("spawn")
                with ProcessPoolExecutor(1, mp_context=spawn) as pool:
                    bursting = None
                    if scenario.burst:
                        bursting = asyncio.get_running_loop().run_in_executor(
                            pool,
                            burst_process,
                            stack.url,
                            seconds + 1.0,
                            burst,
                            scenario.many_addresses,
                        )
                        await asyncio.sleep(1.0)  # the child is up and bursting
                    until = time.monotonic() + seconds
                    await asyncio.gather(
                        *(_check_loop(http, token, until, latencies, errors) for token in tokens)
                    )
                    if bursting is not None:
                        statuses = await bursting
    return Result(
        scenario.name,
        len(latencies),
        _percentile(latencies, 0.50),
        _percentile(latencies, 0.99),
        max(latencies) * 1000,
        len(errors),
        dict(sorted(statuses.items())),
    )


async def main(seconds: float, checkers: int, burst: int, logs: Path | None) -> None:
    results = [await run(scenario, seconds, checkers, burst, logs) for scenario in SCENARIOS]
    print(
        f"token checks: {checkers} existing users in a loop for {seconds:g} s; "
        f"burst: {burst} concurrent registration clients"
    )
    header = (
        f"{'scenario':<28} {'checks':>7} {'p50 ms':>8} {'p99 ms':>8} {'max ms':>8} {'non-200':>8}"
    )
    print(header + "  registrations answered (status: count)")
    for result in results:
        burst_text = ", ".join(f"{status}: {count}" for status, count in result.burst.items())
        print(
            f"{result.scenario:<28} {result.checks:>7} {result.p50_ms:>8.1f} "
            f"{result.p99_ms:>8.1f} {result.max_ms:>8.1f} {result.check_errors:>8}  "
            f"{burst_text or '-'}"
        )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(prog="python -m tests.bench.bench_registration_burst")
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--checkers", type=int, default=4)
    parser.add_argument("--burst", type=int, default=32)
    parser.add_argument("--logs", type=Path, default=None, help="keep the services' logs here")
    arguments = parser.parse_args()
    asyncio.run(main(arguments.seconds, arguments.checkers, arguments.burst, arguments.logs))
