"""CPU time and memory of benchmarked processes, read from Linux ``/proc``: CPU seconds are
robust to a shared machine where throughput is not. A process counts with its live descendants
(uvicorn workers, nginx workers)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterable
from pathlib import Path

__all__ = [
    "cpu_seconds",
    "machine_cpu_seconds",
    "machine_speed",
    "postgres_cpu_seconds",
    "process_tree",
    "rss_mb",
]


_ECHO = """
import os, socket, sys
peer = socket.socket(fileno=int(sys.argv[1]))
while data := peer.recv(1):
    peer.sendall(data)
"""


def machine_speed() -> str:
    """How fast this machine runs Python, and wakes a process, now: the CPU a 10-million-addition
    loop (in a function) takes, and the round trip of one byte to another process and back over
    a socket, as each request's hops between the services take.

    A VM whose host is busy runs the same code slower and its processes count more CPU for it:
    on the team's VM the loop's time doubled and halved again within an hour, and the round trip
    (what the services' CPU per request is most sensitive to) moved on its own, so each CPU
    figure is printed with both."""
    started = time.process_time()
    total = 0
    for number in range(10_000_000):
        total += number
    loop = time.process_time() - started
    ours, theirs = socket.socketpair()
    echo = subprocess.Popen(
        [sys.executable, "-c", _ECHO, str(theirs.fileno())], pass_fds=[theirs.fileno()]
    )
    theirs.close()
    try:
        ours.sendall(b"x")
        ours.recv(1)  # the echo is up
        trips = 5000
        started = time.perf_counter()
        for _ in range(trips):
            ours.sendall(b"x")
            ours.recv(1)
        trip = (time.perf_counter() - started) / trips
    finally:
        ours.close()
        echo.wait(timeout=10)
    return (
        f"a 10-million-addition loop took {loop:.2f} s of CPU, a round trip to another "
        f"process {trip * 1e6:.0f} µs"
    )


def _stat(pid: int) -> list[str]:
    """The fields of ``/proc/<pid>/stat`` after the command name."""
    return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()


def _ticks(fields: list[str]) -> int:
    return int(fields[11]) + int(fields[12])  # utime + stime


def process_tree(pid: int) -> set[int]:
    """A process and its live descendants."""
    parents: dict[int, int] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            parents[int(stat.parent.name)] = int(_stat(int(stat.parent.name))[1])
        except (OSError, ValueError, IndexError):
            continue
    tree, grew = {pid}, True
    while grew:
        children = {child for child, parent in parents.items() if parent in tree} - tree
        tree |= children
        grew = bool(children)
    return tree


def cpu_seconds(pids: Iterable[int]) -> float:
    """User + system CPU of these processes and their descendants."""
    ticks = 0
    for pid in pids:
        for member in process_tree(pid):
            try:
                ticks += _ticks(_stat(member))
            except (OSError, ValueError, IndexError):
                continue
    return ticks / os.sysconf("SC_CLK_TCK")


def postgres_cpu_seconds(database: str | None = None) -> float:
    """User + system CPU of every PostgreSQL process on this machine, or only of the backends
    connected to ``database`` (their process title names it): on a server other sessions use
    too, the work done for one benchmark. A backend that exits in between loses its share."""
    ticks = 0
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            text = stat.read_text()
            if "(postgres)" not in text:
                continue
            if database is not None:
                # "postgres: [<cluster>: ]<user> <database> <client> <state>"
                title = (stat.parent / "cmdline").read_bytes().split(b"\0")[0].split()
                if database.encode() not in title[2:]:
                    continue
            ticks += _ticks(text.rsplit(")", 1)[1].split())
        except (OSError, ValueError, IndexError):
            continue
    return ticks / os.sysconf("SC_CLK_TCK")


_MACHINE_FIELDS = ("user", "nice", "system", "idle", "iowait", "irq", "softirq", "steal")


def machine_cpu_seconds() -> dict[str, float]:
    """The machine's CPU seconds by kind since boot (``/proc/stat``, every core): the share of
    two cores a window used, and what no process is charged for (``softirq``: loopback TCP)."""
    fields = Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]
    tick = os.sysconf("SC_CLK_TCK")
    return {name: int(value) / tick for name, value in zip(_MACHINE_FIELDS, fields, strict=False)}


def rss_mb(pid: int) -> float:
    """Resident memory of a process and its descendants, in MB."""
    pages = 0
    for member in process_tree(pid):
        try:
            pages += int(Path(f"/proc/{member}/statm").read_text().split()[1])
        except (OSError, ValueError, IndexError):
            continue
    return pages * os.sysconf("SC_PAGE_SIZE") / 1_000_000
