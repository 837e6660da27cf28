"""Gateway benchmark: the same authenticated GET, in one run, through

  (a) the upstream directly: nginx answering ``return 200`` (it costs almost nothing, so the
      comparison measures the proxies, not the upstream),
  (b) our gateway (token checked with auth, decision cached, streamed proxy),
  (c) nginx ``auth_request`` to auth's ``GET /internal/v1/tokens/check`` on every request,
  (d) nginx ``auth_request`` with the auth decision cached by ``proxy_cache``, keyed by the
      ``Authorization`` header (what ingress-nginx's ``auth-cache-key`` sets up),
  (e) the floor of a Python proxy on this machine: ``tests/bench/bare_forwarder.py`` (uvloop
      and httptools, as the gateway, forwarding with no check at all),

with wrk at 50 connections and at 1 connection (which shows the added latency without queueing),
one worker per process, printing requests/s, p50, p99, the CPU each proxy spent per request
(from /proc: robust to a shared machine, unlike throughput), the ratios, and the RSS of each
service at the end.

    .venv/bin/python -m tests.bench.bench_gateway [--duration 10] [--connections 50]
        [--gateway-workers 1] [--no-single] [--rounds 3]

``--rounds N`` measures every target N times in turn and judges the median round's ratios.

Needs Debian's ``nginx`` (or nginx-light) and ``wrk``: ``apt-get install -y nginx-light wrk``.
Everything listens on loopback, on free ports; every process is stopped at the end.
Targets: gateway >= 0.5x nginx auth_request + proxy_cache at 50 connections; gateway p50 at
1 connection <= direct p50 + 1 ms; no errors. SQLite (auth's database is not on this path).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import httpx

from tests.bench.processes import cpu_seconds, machine_speed, rss_mb
from tests.bench.rounds import median_round
from tests.support.processes import free_port
from tests.support.stack import Stack, start_stack

PATH = "/billing/invoices"
NGINX_MAIN = """\
{user}worker_processes 1;
daemon off;
pid {dir}/nginx.pid;
error_log {dir}/nginx-error.log warn;
events {{ worker_connections 4096; }}
http {{
    access_log off;
    keepalive_requests 1000000;
    client_body_temp_path {dir}/body;
    proxy_temp_path {dir}/proxy;
    fastcgi_temp_path {dir}/fastcgi;
    uwsgi_temp_path {dir}/uwsgi;
    scgi_temp_path {dir}/scgi;
{servers}
}}
"""
UPSTREAM_SERVERS = """\
    server {{
        listen 127.0.0.1:{port};
        default_type application/json;
        location / {{ return 200 '{{"data":[],"has_more":false,"next_cursor":null}}'; }}
    }}
"""
TOKEN_CHECK = """\
        location = /_token_check {{
            internal;
            proxy_pass http://auth/internal/v1/tokens/check;
            proxy_pass_request_body off;
            proxy_set_header Content-Length "";
            proxy_set_header Connection "";
            proxy_http_version 1.1;
            proxy_set_header X-Internal-Token "{internal_token}";
            proxy_set_header Authorization $http_authorization;
{cache}
        }}
"""
# ingress-nginx's auth-cache-key: the decision for one Authorization value is reused for its
# validity (30 s here, the gateway's default GATEWAY_TOKEN_CACHE_SECONDS).
CACHE = """\
            proxy_cache auth_cache;
            proxy_cache_key $http_authorization;
            proxy_cache_valid 200 30s;
            proxy_ignore_headers Cache-Control Expires Set-Cookie Vary;
"""
PROXY_SERVER = """\
    server {{
        listen 127.0.0.1:{port};
{token_check}
        location /api/v1/ {{
            auth_request /_token_check;
            auth_request_set $user_id $upstream_http_x_user_id;
            auth_request_set $user_email $upstream_http_x_user_email;
            proxy_pass http://upstream/;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_set_header X-User-Id $user_id;
            proxy_set_header X-User-Email $user_email;
            proxy_set_header X-Internal-Token "{internal_token}";
            proxy_set_header X-Forwarded-For $remote_addr;
        }}
    }}
"""
PROXY_SERVERS = """\
    proxy_cache_path {dir}/auth-cache levels=1:2 keys_zone=auth_cache:10m inactive=60s;
    upstream auth {{ server {auth}; keepalive 128; }}
    upstream upstream {{ server {upstream}; keepalive 128; }}
{uncached}
{cached}
"""

DIRECT = "direct (nginx return 200)"
GATEWAY = "gateway"
NGINX = "nginx auth_request"
NGINX_CACHED = "nginx auth_request + cache"
FLOOR = "bare Python forwarder (floor)"


@dataclass
class Result:
    name: str
    connections: int
    requests_per_second: float
    p50_ms: float
    p99_ms: float
    cpu_us_per_request: float
    errors: str


def _ms(text: str) -> float:
    match = re.fullmatch(r"([\d.]+)(us|ms|s|m)", text)
    if match is None:
        return float("nan")
    value, unit = match.groups()
    return float(value) * {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60_000.0}[unit]


def wrk(
    name: str, url: str, token: str, connections: int, duration: float, proxy_pids: list[int]
) -> Result:
    threads = str(min(2, connections))
    header = f"Authorization: Bearer {token}"
    base = ["wrk", "-t", threads, "-c", str(connections), "-H", header, "--latency"]
    subprocess.run([*base, "-d", "2s", url], capture_output=True, check=True)  # warm-up
    cpu_before = cpu_seconds(proxy_pids)
    out = subprocess.run(
        [*base, "-d", f"{duration:g}s", url], capture_output=True, text=True, check=True
    ).stdout
    cpu = cpu_seconds(proxy_pids) - cpu_before
    found = {
        key: re.search(pattern, out)
        for key, pattern in (
            ("rps", r"Requests/sec:\s+([\d.]+)"),
            ("requests", r"(\d+) requests in"),
            # Anchored: "62.50%" in the thread stats line must not count as the p50 line.
            ("p50", r"(?m)^\s+50%\s+(\S+)"),
            ("p99", r"(?m)^\s+99%\s+(\S+)"),
        )
    }
    if any(match is None for match in found.values()):
        print(f"unexpected wrk output for {name}:\n{out}", file=sys.stderr)
        return Result(name, connections, 0.0, float("nan"), float("nan"), float("nan"), "none")
    rps = float(found["rps"].group(1))  # type: ignore[union-attr]
    requests = int(found["requests"].group(1))  # type: ignore[union-attr]
    p50 = _ms(found["p50"].group(1))  # type: ignore[union-attr]
    p99 = _ms(found["p99"].group(1))  # type: ignore[union-attr]
    errors = []
    if match := re.search(r"Non-2xx or 3xx responses: (\d+)", out):
        errors.append(f"{match.group(1)} non-2xx")
    if match := re.search(r"Socket errors: (.+)", out):
        errors.append(f"socket errors {match.group(1)}")
    per_request = cpu / requests * 1e6 if requests and proxy_pids else float("nan")
    return Result(name, connections, rps, p50, p99, per_request, "; ".join(errors))


def _start_nginx(workdir: Path, name: str, servers: str) -> subprocess.Popen[bytes]:
    directory = workdir / name
    directory.mkdir()
    conf = directory / "nginx.conf"
    conf.write_text(
        NGINX_MAIN.format(
            user="user root;\n" if os.geteuid() == 0 else "", dir=directory, servers=servers
        )
    )
    nginx = shutil.which("nginx") or "/usr/sbin/nginx"
    return subprocess.Popen(
        [nginx, "-p", str(directory), "-c", str(conf)],
        stdout=subprocess.DEVNULL,
        stderr=(directory / "nginx-stderr.log").open("ab"),
    )


def _wait(url: str, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            httpx.get(url, timeout=0.5)
            return
        except httpx.HTTPError:
            time.sleep(0.05)
    process.kill()
    raise SystemExit(f"{process.args!r} did not start at {url}")


def start_upstream(workdir: Path) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    process = _start_nginx(workdir, "upstream", UPSTREAM_SERVERS.format(port=port))
    url = f"http://127.0.0.1:{port}"
    _wait(url, process)
    return process, url


def start_nginx_proxies(
    stack: Stack, workdir: Path, upstream_url: str
) -> tuple[subprocess.Popen[bytes], str, str]:
    """One nginx (one worker) with two servers: auth asked every time, and auth's decision
    cached."""
    uncached_port, cached_port = free_port(), free_port()
    token = stack.internal_token

    def server(port: int, cache: str) -> str:
        check = TOKEN_CHECK.format(internal_token=token, cache=cache)
        return PROXY_SERVER.format(port=port, token_check=check, internal_token=token)

    directory = workdir / "proxy"
    servers = PROXY_SERVERS.format(
        dir=directory,
        auth=stack.auth.url.removeprefix("http://"),
        upstream=upstream_url.removeprefix("http://"),
        uncached=server(uncached_port, ""),
        cached=server(cached_port, CACHE),
    )
    process = _start_nginx(workdir, "proxy", servers)
    uncached, cached = f"http://127.0.0.1:{uncached_port}", f"http://127.0.0.1:{cached_port}"
    _wait(uncached, process)
    return process, uncached, cached


def start_bare_forwarder(upstream_url: str) -> tuple[subprocess.Popen[bytes], str]:
    """``tests/bench/bare_forwarder.py`` in front of the upstream, one process."""
    port = free_port()
    upstream_port = upstream_url.rsplit(":", 1)[1]
    process = subprocess.Popen(
        [sys.executable, "-m", "tests.bench.bare_forwarder", upstream_port, str(port)],
        stdout=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    _wait(url, process)
    return process, url


def check_tools() -> None:
    missing = [tool for tool in ("nginx", "wrk") if not shutil.which(tool)]
    if "nginx" in missing and Path("/usr/sbin/nginx").exists():
        missing.remove("nginx")
    if missing:
        raise SystemExit(
            f"missing {', '.join(missing)}: apt-get update && apt-get install -y nginx-light wrk"
        )


async def login(gateway_url: str) -> str:
    email = f"bench-{os.getpid()}-{int(time.time())}@example.com"
    async with httpx.AsyncClient(base_url=gateway_url, timeout=30) as http:
        user = {"email": email, "password": "bench-password-123", "name": "Bench"}
        (await http.post("/api/v1/auth/register", json=user)).raise_for_status()
        response = await http.post("/api/v1/auth/login", json=user)
        response.raise_for_status()
        token: str = response.json()["access_token"]
        check = await http.get(f"/api/v1{PATH}", headers={"Authorization": f"Bearer {token}"})
        check.raise_for_status()
        return token


def _verdict(ok: bool) -> str:
    return "meets" if ok else "misses"


def report(rounds: list[list[Result]]) -> None:
    """The table of every round, then at each concurrency the ratios of each round and the
    verdict on their median (a shared machine's speed drifts between measurements)."""
    several = len(rounds) > 1
    print(
        f"\n{'target':<30}{'conns':>6}{'req/s':>10}{'p50 ms':>9}{'p99 ms':>9}"
        f"{'CPU us/req':>12}  errors"
    )
    for number, results in enumerate(rounds, 1):
        if several:
            print(f"round {number}")
        for r in results:
            print(
                f"{r.name:<30}{r.connections:>6}{r.requests_per_second:>10.0f}"
                f"{r.p50_ms:>9.2f}{r.p99_ms:>9.2f}{r.cpu_us_per_request:>12.0f}  {r.errors}"
            )
    print("(CPU us/req: the proxy's own processes, auth included; none for direct)")
    for connections in sorted({r.connections for r in rounds[0]}, reverse=True):
        figures = [f for results in rounds if (f := _figures(results, connections)) is not None]
        if len(figures) < len(rounds):
            continue
        ratio, uncached_ratio, added = median_round(figures, lambda f: f[0])
        every = ", ".join(f"{f[0]:.2f}x" for f in figures)
        print(
            f"\nat {connections} connection(s): gateway/nginx cached throughput {ratio:.2f}x"
            + (f" (rounds {every}; median)" if several else "")
            + (f" ({_verdict(ratio >= 0.5)} >= 0.5x)" if connections > 1 else "")
            + f"; gateway/nginx uncached {uncached_ratio:.2f}x"
        )
        for name, extra in added.items():
            note = (
                f" ({_verdict(extra <= 1)} <= +1 ms)"
                if name == GATEWAY and connections == 1
                else ""
            )
            print(f"  p50 added by {name}: {extra:+.2f} ms{note}")
        _report_floor(rounds, connections)


def _report_floor(rounds: list[list[Result]], connections: int) -> None:
    """How far below the gateway a Python proxy can go here: the bare forwarder's throughput
    against nginx cached, and its CPU per request against the gateway's (medians of rounds)."""
    rows = [{r.name: r for r in results if r.connections == connections} for results in rounds]
    if not all(FLOOR in row and GATEWAY in row and NGINX_CACHED in row for row in rows):
        return
    ratio = statistics.median(
        row[FLOOR].requests_per_second / row[NGINX_CACHED].requests_per_second for row in rows
    )
    floor_cpu = statistics.median(row[FLOOR].cpu_us_per_request for row in rows)
    gateway_cpu = statistics.median(row[GATEWAY].cpu_us_per_request for row in rows)
    cached_cpu = statistics.median(row[NGINX_CACHED].cpu_us_per_request for row in rows)
    print(
        f"  floor: a Python forwarder with no check makes {ratio:.2f}x nginx cached's requests/s;"
        f" CPU per request: floor {floor_cpu:.0f} us, gateway {gateway_cpu:.0f} us,"
        f" nginx cached {cached_cpu:.0f} us (medians)"
    )


def _figures(
    results: list[Result], connections: int
) -> tuple[float, float, dict[str, float]] | None:
    """At one concurrency: gateway/nginx cached and gateway/nginx uncached throughput, and the
    p50 each proxy adds to the direct one."""
    rows = {r.name: r for r in results if r.connections == connections}
    direct, gateway = rows.get(DIRECT), rows.get(GATEWAY)
    cached, uncached = rows.get(NGINX_CACHED), rows.get(NGINX)
    if direct is None or gateway is None or cached is None or uncached is None:
        return None
    return (
        gateway.requests_per_second / cached.requests_per_second,
        gateway.requests_per_second / uncached.requests_per_second,
        {row.name: row.p50_ms - direct.p50_ms for row in (gateway, cached, uncached)},
    )


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--duration", type=float, default=10.0, help="seconds per measurement")
    parser.add_argument("--connections", type=int, default=50)
    parser.add_argument("--gateway-workers", type=int, default=1)
    parser.add_argument("--no-single", action="store_true", help="skip the 1-connection runs")
    parser.add_argument(
        "--rounds", type=int, default=1, help="measure every target this many times, in turn"
    )
    args = parser.parse_args()
    check_tools()
    levels = [args.connections] if args.no_single else [args.connections, 1]
    print(f"cpus: {os.cpu_count()}, load average: {os.getloadavg()[0]:.2f}; {machine_speed()}")

    with tempfile.TemporaryDirectory(prefix="bench-gateway-") as tmp:
        workdir = Path(tmp)
        upstream, upstream_url = start_upstream(workdir)
        proxies = floor = None
        try:
            async with start_stack(
                workdir,
                facturation_url=upstream_url,
                auth_env={
                    "LOGIN_MAX_ATTEMPTS_PER_ADDRESS": "0",
                    "REGISTER_MAX_ATTEMPTS_PER_ADDRESS": "0",
                },
                extra_env={"LOG_LEVEL": "WARNING", "WORKERS": "1"},
                gateway_env={"WORKERS": str(args.gateway_workers)},
            ) as stack:
                token = await login(stack.url)
                proxies, uncached_url, cached_url = start_nginx_proxies(
                    stack, workdir, upstream_url
                )
                floor, floor_url = start_bare_forwarder(upstream_url)
                assert stack.auth.process is not None
                assert stack.gateway.process is not None
                auth_pid, gateway_pid = stack.auth.process.pid, stack.gateway.process.pid
                targets = [
                    (DIRECT, upstream_url + PATH, []),
                    (GATEWAY, f"{stack.url}/api/v1{PATH}", [gateway_pid, auth_pid]),
                    (NGINX, f"{uncached_url}/api/v1{PATH}", [proxies.pid, auth_pid]),
                    (NGINX_CACHED, f"{cached_url}/api/v1{PATH}", [proxies.pid, auth_pid]),
                    (FLOOR, f"{floor_url}/api/v1{PATH}", [floor.pid]),
                ]
                rounds: list[list[Result]] = []
                for _ in range(args.rounds):
                    rounds.append(
                        [
                            await asyncio.to_thread(
                                wrk, name, url, token, connections, args.duration, pids
                            )
                            for connections in levels
                            for name, url, pids in targets
                        ]
                    )
                memory = {
                    "auth": rss_mb(auth_pid),
                    "gateway": rss_mb(gateway_pid),
                    "nginx (proxy)": rss_mb(proxies.pid),
                }
        finally:
            for process in (floor, proxies, upstream):
                if process is not None:
                    process.terminate()
                    process.wait(timeout=10)
    report(rounds)
    print("\nRSS after the loads: " + ", ".join(f"{k} {v:.0f} MB" for k, v in memory.items()))
    print(f"load average at the end: {os.getloadavg()[0]:.2f}; {machine_speed()}")


if __name__ == "__main__":
    if sys.platform != "linux":
        raise SystemExit("this benchmark runs on Linux (Debian's nginx and wrk)")
    asyncio.run(main())
