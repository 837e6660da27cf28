"""Real service processes on loopback ports, for end-to-end tests and benchmarks."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Mapping
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[2]


_HANDED_OUT: set[int] = set()


def free_port() -> int:
    """A loopback port nothing listens on, never the same one twice in a test run.

    The kernel picks the port of a ``bind`` to port 0 at random, and it picks the same one
    again often (about 140 repeats in 2,000 calls): two services of one stack were once given
    the same port, the second could not listen, and the first answered its health check, so
    the gateway sent auth's requests to the echo upstream.
    """
    while True:
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            port: int = sock.getsockname()[1]
        if port not in _HANDED_OUT:
            _HANDED_OUT.add(port)
            return port


_TCP_TABLES = (Path("/proc/net/tcp"), Path("/proc/net/tcp6"))
_LISTEN = "0A"


def listens_on(pid: int, port: int) -> bool:
    """Whether process ``pid`` holds a TCP socket listening on ``port``, read from Linux's
    ``/proc`` (elsewhere, where there is no ``/proc/net/tcp``, it is taken on trust)."""
    if not _TCP_TABLES[0].exists():
        return True
    sockets = set()
    for table in _TCP_TABLES:
        if not table.exists():
            continue
        for line in table.read_text().splitlines()[1:]:
            fields = line.split()
            if fields[3] == _LISTEN and int(fields[1].rsplit(":", 1)[1], 16) == port:
                sockets.add(f"socket:[{fields[9]}]")
    if not sockets:
        return False
    try:
        descriptors = list(Path(f"/proc/{pid}/fd").iterdir())
    except OSError:  # the process is gone
        return False
    for descriptor in descriptors:
        try:
            if os.readlink(descriptor) in sockets:
                return True
        except OSError:  # closed meanwhile
            continue
    return False


def run_module(
    module: str, *args: str, env: Mapping[str, str], cwd: Path = ROOT, timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    """``python -m <module> <args>`` to completion, output captured as text, never raising."""
    return subprocess.run(
        [sys.executable, "-m", module, *args],
        env=env,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


class ServiceProcess:
    """``python -m <module> serve`` (or another ``command``, e.g. facturation's ``worker``) with
    the given environment, logs kept in a file."""

    def __init__(
        self,
        module: str,
        env: Mapping[str, str],
        log_dir: Path,
        *,
        port: int | None = None,
        args: tuple[str, ...] = (),
        command: str = "serve",
    ) -> None:
        self.module = module
        self.command = command
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.env = {**os.environ, **env, "PYTHONUNBUFFERED": "1"}
        self.args = args
        self.log_path = log_dir / f"{module}-{command}-{self.port}.log"
        self.process: subprocess.Popen[bytes] | None = None

    def run(self, command: str) -> subprocess.CompletedProcess[str]:
        return run_module(self.module, command, env=self.env)

    async def migrate(self) -> None:
        """Apply the service's migrations to its database (``python -m <module> migrate``)."""
        result = await asyncio.to_thread(self.run, "migrate")
        if result.returncode != 0:
            raise RuntimeError(f"{self.module} migrate failed:\n{result.stdout}{result.stderr}")

    def start(self, *, wait: bool = True, timeout: float = 30.0) -> ServiceProcess:
        # The child keeps its own copy of the descriptor; ours is closed at once.
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    self.module,
                    self.command,
                    "--host",
                    "127.0.0.1",
                    "--port",
                    str(self.port),
                    *self.args,
                ],
                env=self.env,
                cwd=ROOT,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        if wait:
            self.wait_healthy(timeout)
        return self

    def wait_healthy(self, timeout: float = 30.0) -> None:
        """Until the process answers ``/healthz`` with 200 on its port. An answer counts only
        from a port this process listens on: another server on it (a port someone else took)
        would pass the check, and the process, which could not listen, would exit."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process is not None and self.process.poll() is not None:
                raise RuntimeError(f"{self.module} exited early:\n{self.logs()}")
            try:
                healthy = httpx.get(f"{self.url}/healthz", timeout=1.0).status_code == 200
            except httpx.HTTPError:
                healthy = False
            if healthy and (self.process is None or listens_on(self.process.pid, self.port)):
                return
            time.sleep(0.1)
        raise RuntimeError(f"{self.module} did not become healthy:\n{self.logs()}")

    def logs(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        os.killpg(self.process.pid, signal.SIGTERM)
        try:
            self.process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=5)

    def kill(self) -> None:
        """Die as in a crash: no shutdown hooks run."""
        if self.process is not None and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=5)
