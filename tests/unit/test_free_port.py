"""The test harness's ports: every service of a stack gets a port of its own, and a service
counts as up only once it answers on a port it listens on itself."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler
from pathlib import Path

import pytest

from tests.support.processes import ServiceProcess, free_port, listens_on
from tests.support.threaded_server import serving


def test_free_port_never_hands_out_the_same_port_twice() -> None:
    # The kernel repeats itself about 140 times in 2,000 binds to port 0.
    ports = [free_port() for _ in range(2000)]

    assert len(set(ports)) == len(ports)


def test_a_port_handed_out_is_free_to_listen_on() -> None:
    port = free_port()

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", port))
        sock.listen()


def test_listens_on_names_the_process_that_holds_the_port() -> None:
    port = free_port()
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", port))
        sock.listen()
        other = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
        try:
            assert listens_on(os.getpid(), port)
            assert not listens_on(other.pid, port)
        finally:
            other.kill()
            other.wait()
    assert not listens_on(os.getpid(), port)  # closed: nobody listens


class _Healthy(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *_: object) -> None:
        pass


@pytest.fixture
def stranger() -> Iterator[int]:
    """Another server answering 200 to everything, on a port of the harness."""
    with serving(_Healthy) as port:
        yield port


def test_a_stranger_answering_on_the_port_does_not_make_a_service_healthy(
    stranger: int, tmp_path: Path
) -> None:
    # What a service that cannot listen does: it logs why, then exits.
    (tmp_path / "cannot_listen.py").write_text(
        "import sys, time\n"
        "print('[Errno 98] address already in use', flush=True)\n"
        "time.sleep(1)\n"
        "sys.exit(1)\n"
    )
    service = ServiceProcess(
        "cannot_listen", {"PYTHONPATH": str(tmp_path)}, tmp_path, port=stranger
    )

    try:
        with pytest.raises(RuntimeError, match="exited early") as raised:
            service.start(timeout=10)
    finally:
        service.stop()

    assert "address already in use" in str(raised.value)
