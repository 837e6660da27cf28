from __future__ import annotations

import asyncio
import time

from argon2 import PasswordHasher

from auth_service.passwords import Passwords


async def test_hashing_runs_off_the_event_loop() -> None:
    passwords = Passwords(PasswordHasher(time_cost=3, memory_cost=32768, parallelism=1))
    ticks = 0
    hashing = asyncio.create_task(passwords.hash("correct horse battery"))
    started = time.perf_counter()
    while not hashing.done():
        await asyncio.sleep(0.001)
        ticks += 1
    elapsed = time.perf_counter() - started
    # Had the hash run on the loop, the loop could not have ticked while it ran.
    assert elapsed > 0.02
    assert ticks >= 5
    assert (await hashing).startswith("$argon2id$")


async def test_a_stored_hash_of_weaker_parameters_is_due_for_rehash() -> None:
    weak = await Passwords(PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)).hash(
        "correct horse battery"
    )
    stronger = Passwords(PasswordHasher(time_cost=2, memory_cost=2048, parallelism=1))
    assert stronger.needs_rehash(weak)
    assert await stronger.verify(weak, "correct horse battery")
