"""``python -m facturation_service worker`` runs on uvloop, the loop the app's uvicorn runs on,
and stops on SIGTERM."""

from __future__ import annotations

import asyncio
import os
import signal

import pytest
import uvloop

from facturation_service import worker_process
from facturation_service.settings import FacturationSettings


def test_the_worker_command_runs_on_uvloop_and_stops_on_sigterm(
    monkeypatch: pytest.MonkeyPatch, settings: FacturationSettings
) -> None:
    loops: list[asyncio.AbstractEventLoop] = []

    async def run_worker(given: FacturationSettings, stop: asyncio.Event) -> None:
        assert given is settings
        loops.append(asyncio.get_running_loop())
        os.kill(os.getpid(), signal.SIGTERM)
        await asyncio.wait_for(stop.wait(), timeout=5)

    monkeypatch.setattr(worker_process, "read_settings", lambda: settings)
    monkeypatch.setattr(worker_process, "run_worker", run_worker)

    assert worker_process.main() == 0
    assert len(loops) == 1
    assert isinstance(loops[0], uvloop.Loop)
