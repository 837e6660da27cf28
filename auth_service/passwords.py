"""argon2id password hashing, always off the event loop (a hash costs tens of milliseconds).

At most ``max_concurrent`` hashes (registrations, logins, rehashes: each one is a hash) run at
once, each in a thread of the service's own hashing pool; past that a request is answered 503 with
``Retry-After`` at once instead of joining an unbounded queue. Memory follows: at most
``max_concurrent`` x ``ARGON2_MEMORY_KIB`` in hashes.

The hashing threads run at the lowest CPU priority there is: Linux's ``SCHED_IDLE`` policy, a
thread's own and inherited by the threads argon2 starts for its lanes (nice 19 where the policy is
not available). A hash then only takes CPU the event loop does not want, so a burst of
registrations cannot slow token checks, nor the 429 and 503 answers. Under a cgroup (a container)
the policy ranks the threads among the container's own: hashing yields to this service's event
loop, not to other containers. A plain +10 nice was not enough: up to ``max_concurrent`` x
parallelism lane threads at nice 10 together weigh more than the one event-loop thread
(docs/hostile-clients.md has the figures).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import os
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import ParamSpec, TypeVar

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from shared import ServiceUnavailableError, UnprocessableError

P = ParamSpec("P")
T = TypeVar("T")
RETRY_AFTER_SECONDS = 1
# Where SCHED_IDLE is missing: the lowest nice value.
HASHING_NICENESS = 19


def _lowest_priority() -> None:
    thread = threading.get_native_id()
    with contextlib.suppress(AttributeError, OSError):
        os.sched_setscheduler(thread, os.SCHED_IDLE, os.sched_param(0))
        return
    # Where threads have no priority of their own (not Linux), hashing keeps the default.
    with contextlib.suppress(AttributeError, OSError):
        os.setpriority(os.PRIO_PROCESS, thread, HASHING_NICENESS)


__all__ = ["MAX_PASSWORD_LENGTH", "MIN_PASSWORD_LENGTH", "Passwords", "check_password_policy"]

MIN_PASSWORD_LENGTH = 10
# Bounds the work one request can ask of argon2; far above any real passphrase.
MAX_PASSWORD_LENGTH = 1024


def check_password_policy(password: str) -> None:
    if len(password) < MIN_PASSWORD_LENGTH:
        raise UnprocessableError(
            f"The password must be at least {MIN_PASSWORD_LENGTH} characters long."
        )
    if len(password) > MAX_PASSWORD_LENGTH:
        raise UnprocessableError(
            f"The password must be at most {MAX_PASSWORD_LENGTH} characters long."
        )


class Passwords:
    """Hash and verify with argon2id (argon2-cffi's RFC 9106 low-memory profile)."""

    def __init__(self, hasher: PasswordHasher | None = None, *, max_concurrent: int = 4) -> None:
        self._hasher = hasher or PasswordHasher()
        # Unknown users are verified against this, so they cost as much time as a wrong password.
        self._dummy_hash = self._hasher.hash("not a password of anyone")
        self.max_concurrent = max_concurrent
        self.in_flight = 0
        self._threads = ThreadPoolExecutor(
            max_workers=max_concurrent, thread_name_prefix="argon2", initializer=_lowest_priority
        )

    def close(self) -> None:
        """Let the hashing threads go (at shutdown; hashes under way finish first)."""
        self._threads.shutdown(wait=False)

    async def hash(self, password: str) -> str:
        """Raises ``ServiceUnavailableError`` when ``max_concurrent`` hashes are in flight."""
        return await self._off_loop(self._hasher.hash, password)

    async def verify(self, password_hash: str | None, password: str) -> bool:
        """Whether ``password`` matches; ``None`` (no such user) costs the same time, then fails.

        Raises ``ServiceUnavailableError`` when ``max_concurrent`` hashes are in flight.
        """
        target = password_hash if password_hash is not None else self._dummy_hash
        matched = await self._off_loop(self._verify, target, password)
        return matched and password_hash is not None

    def ensure_capacity(self) -> None:
        """Refuse early, before any database work, when every hashing slot is taken (the hash
        itself checks again: a slot may be gone by then).

        Raises:
            ServiceUnavailableError: ``max_concurrent`` hashes are running.
        """
        if self.in_flight >= self.max_concurrent:
            raise ServiceUnavailableError(
                "Too many passwords are being checked right now; retry shortly.",
                headers={"Retry-After": str(RETRY_AFTER_SECONDS)},
                extra={"retry_after": RETRY_AFTER_SECONDS},
            )

    async def _off_loop(self, work: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
        # One event loop per process: the check and the increment cannot interleave.
        self.ensure_capacity()
        self.in_flight += 1
        try:
            return await asyncio.get_running_loop().run_in_executor(
                self._threads, functools.partial(work, *args, **kwargs)
            )
        finally:
            self.in_flight -= 1

    def needs_rehash(self, password_hash: str) -> bool:
        return self._hasher.check_needs_rehash(password_hash)

    def _verify(self, password_hash: str, password: str) -> bool:
        try:
            return self._hasher.verify(password_hash, password)
        except (VerificationError, InvalidHashError):
            return False
