"""Gateway benchmark: the same authenticated GET driven, in one run, through

  (a) the upstream directly (the echo upstream standing in for facturation),
  (b) our gateway (token checked with auth, decision cached, streamed proxy),
  (c) nginx with ``auth_request`` pointed at auth's ``GET /internal/v1/tokens/check``,

with wrk at 50 connections (and at 1 connection, which shows the added latency without queueing),
printing requests/s, p50 and p99 for each and the ratios.

    .venv/bin/python -m tests.bench.bench_gateway [--duration 10] [--connections 50]
        [--gateway-workers 1,2] [--auth-workers 1] [--nginx-workers 1] [--no-single]

Needs Debian's ``nginx`` (or nginx-light) and ``wrk``; with neither on PATH it says how to
install them. Everything listens on loopback, on free ports; every process is stopped at the end.
Targets: gateway requests/s >= nginx auth_request's; gateway p50 <= direct p50 + 1 ms.
Databases: PostgreSQL at TEST_DATABASE_URL when set, SQLite otherwise.
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
from dataclasses import dataclass
from pathlib import Path

import httpx

from tests.support.processes import free_port
from tests.support.stack import Stack, another_gateway, start_stack

PATH = "/billing/invoices"
NGINX_CONF = """\
{user}worker_processes {workers};
daemon off;
pid {dir}/nginx.pid;
error_log {dir}/nginx-error.log warn;
events {{ worker_connections 4096; }}
http {{
    access_log off;
    client_body_temp_path {dir}/body;
    proxy_temp_path {dir}/proxy;
    fastcgi_temp_path {dir}/fastcgi;
    uwsgi_temp_path {dir}/uwsgi;
    scgi_temp_path {dir}/scgi;
    upstream auth {{ server {auth}; keepalive 128; }}
    upstream facturation {{ server {upstream}; keepalive 128; }}
    server {{
        listen 127.0.0.1:{port};
        location = /_token_check {{
            internal;
            proxy_pass http://auth/internal/v1/tokens/check;
            proxy_pass_request_body off;
            proxy_set_header Content-Length "";
            proxy_set_header Connection "";
            proxy_http_version 1.1;
            proxy_set_header X-Internal-Token "{internal_token}";
            proxy_set_header Authorization $http_authorization;
        }}
        location /api/v1/ {{
            auth_request /_token_check;
            auth_request_set $user_id $upstream_http_x_user_id;
            auth_request_set $user_email $upstream_http_x_user_email;
            proxy_pass http://facturation/;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_set_header X-User-Id $user_id;
            proxy_set_header X-User-Email $user_email;
            proxy_set_header X-Internal-Token "{internal_token}";
            proxy_set_header X-Forwarded-For $remote_addr;
        }}
    }}
}}
"""


@dataclass
class Result:
    name: str
    connections: int
    requests_per_second: float
    p50_ms: float
    p99_ms: float
    errors: str


def _ms(text: str) -> float:
    match = re.fullmatch(r"([\d.]+)(us|ms|s|m)", text)
    if match is None:
        return float("nan")
    value, unit = match.groups()
    return float(value) * {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60_000.0}[unit]


def wrk(name: str, url: str, token: str, connections: int, duration: float) -> Result:
    threads = str(min(2, connections))
    header = f"Authorization: Bearer {token}"
    base = ["wrk", "-t", threads, "-c", str(connections), "-H", header, "--latency"]
    subprocess.run([*base, "-d", "2s", url], capture_output=True, check=True)  # warm-up
    out = subprocess.run(
        [*base, "-d", f"{duration:g}s", url], capture_output=True, text=True, check=True
    ).stdout
    found = {
        key: re.search(pattern, out)
        for key, pattern in (
            ("rps", r"Requests/sec:\s+([\d.]+)"),
            # Anchored: "62.50%" in the thread stats line must not count as the p50 line.
            ("p50", r"(?m)^\s+50%\s+(\S+)"),
            ("p99", r"(?m)^\s+99%\s+(\S+)"),
        )
    }
    if any(match is None for match in found.values()):
        print(f"unexpected wrk output for {name}:\n{out}", file=sys.stderr)
        return Result(name, connections, 0.0, float("nan"), float("nan"), "no result")
    rps = float(found["rps"].group(1))  # type: ignore[union-attr]
    p50 = _ms(found["p50"].group(1))  # type: ignore[union-attr]
    p99 = _ms(found["p99"].group(1))  # type: ignore[union-attr]
    errors = []
    if match := re.search(r"Non-2xx or 3xx responses: (\d+)", out):
        errors.append(f"{match.group(1)} non-2xx")
    if match := re.search(r"Socket errors: (.+)", out):
        errors.append(f"socket errors {match.group(1)}")
    return Result(name, connections, rps, p50, p99, "; ".join(errors))


def start_nginx(stack: Stack, workdir: Path, workers: int) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    conf = workdir / "nginx.conf"
    conf.write_text(
        NGINX_CONF.format(
            user="user root;\n" if os.geteuid() == 0 else "",
            workers=workers,
            dir=workdir,
            auth=stack.auth.url.removeprefix("http://"),
            upstream=stack.facturation_url.removeprefix("http://"),
            port=port,
            internal_token=stack.internal_token,
        )
    )
    nginx = shutil.which("nginx") or "/usr/sbin/nginx"
    process = subprocess.Popen(
        [nginx, "-p", str(workdir), "-c", str(conf)],
        stdout=subprocess.DEVNULL,
        stderr=(workdir / "nginx-stderr.log").open("ab"),
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            httpx.get(url, timeout=0.5)
            return process, url
        except httpx.HTTPError:
            time.sleep(0.1)
    process.kill()
    raise SystemExit(f"nginx did not start; see {workdir}/nginx-error.log")


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


def report(results: list[Result]) -> None:
    print(f"\n{'target':<34}{'conns':>6}{'req/s':>10}{'p50 ms':>9}{'p99 ms':>9}  errors")
    for r in results:
        print(
            f"{r.name:<34}{r.connections:>6}{r.requests_per_second:>10.0f}"
            f"{r.p50_ms:>9.2f}{r.p99_ms:>9.2f}  {r.errors}"
        )
    for connections in sorted({r.connections for r in results}, reverse=True):
        rows = {r.name: r for r in results if r.connections == connections}
        direct, nginx = rows.get("direct"), rows.get("nginx auth_request")
        if direct is None or nginx is None:
            continue
        print(f"\nat {connections} connection(s):")
        for name, row in rows.items():
            if not name.startswith("gateway"):
                continue
            throughput = row.requests_per_second / nginx.requests_per_second
            added = row.p50_ms - direct.p50_ms
            print(
                f"  {name}: throughput {throughput:.2f}x nginx auth_request "
                f"({'meets' if throughput >= 1 else 'misses'} >= 1x); "
                f"p50 {added:+.2f} ms vs direct "
                f"({'meets' if added <= 1 else 'misses'} <= +1 ms); "
                f"{row.requests_per_second / direct.requests_per_second:.2f}x direct throughput"
            )


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--duration", type=float, default=10.0, help="seconds per measurement")
    parser.add_argument("--connections", type=int, default=50)
    parser.add_argument("--gateway-workers", default="1", help="comma-separated, e.g. 1,2")
    parser.add_argument("--auth-workers", type=int, default=1)
    parser.add_argument("--nginx-workers", type=int, default=1)
    parser.add_argument("--no-single", action="store_true", help="skip the 1-connection runs")
    args = parser.parse_args()
    check_tools()
    gateway_workers = [int(n) for n in args.gateway_workers.split(",")]
    levels = [args.connections] if args.no_single else [args.connections, 1]
    print(f"cpus: {os.cpu_count()}, load average: {os.getloadavg()[0]:.2f}")

    with tempfile.TemporaryDirectory(prefix="bench-gateway-") as tmp:
        workdir = Path(tmp)
        async with start_stack(
            workdir,
            auth_env={
                "LOGIN_MAX_ATTEMPTS_PER_ADDRESS": "0",
                "REGISTER_MAX_ATTEMPTS_PER_ADDRESS": "0",
            },
            extra_env={"LOG_LEVEL": "WARNING", "WORKERS": str(args.auth_workers)},
            gateway_env={"WORKERS": str(gateway_workers[0])},
        ) as stack:
            assert stack.facturation is not None
            token = await login(stack.url)
            nginx, nginx_url = start_nginx(stack, workdir, args.nginx_workers)
            results: list[Result] = []
            try:
                for connections in levels:

                    async def measure(name: str, url: str, connections: int = connections) -> None:
                        results.append(
                            await asyncio.to_thread(
                                wrk, name, url, token, connections, args.duration
                            )
                        )

                    await measure("direct", f"{stack.facturation.url}{PATH}")
                    for workers in gateway_workers:
                        name = f"gateway ({workers} worker{'s' if workers > 1 else ''})"
                        if workers == gateway_workers[0]:
                            await measure(name, f"{stack.url}/api/v1{PATH}")
                            continue
                        env = {"WORKERS": str(workers)}
                        async with another_gateway(stack, workdir, env) as other:
                            await measure(name, f"{other.url}/api/v1{PATH}")
                    await measure("nginx auth_request", f"{nginx_url}/api/v1{PATH}")
            finally:
                nginx.terminate()
                nginx.wait(timeout=10)
    report(results)


if __name__ == "__main__":
    if sys.platform != "linux":
        raise SystemExit("this benchmark runs on Linux (Debian's nginx and wrk)")
    asyncio.run(main())
