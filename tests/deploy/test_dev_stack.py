"""`make dev` (scripts/dev.py) starts the sandbox from the checkout, where it lives now that a
production install leaves it out."""

from __future__ import annotations

import importlib.util
import signal
from pathlib import Path
from types import ModuleType
from typing import Any

import httpx
import pytest

ROOT = Path(__file__).resolve().parents[2]


def _dev_script() -> ModuleType:
    spec = importlib.util.spec_from_file_location("dev_script", ROOT / "scripts" / "dev.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_offline_stack_starts_the_sandbox_first_then_auth_facturation_and_the_gateway() -> None:
    services = [name for name, _, _ in _dev_script().available_services(real_stripe=False)]
    assert services == ["stripe_sandbox", "auth_service", "facturation_service", "gateway"]


def test_with_real_stripe_keys_the_sandbox_is_not_started() -> None:
    services = [name for name, _, _ in _dev_script().available_services(real_stripe=True)]
    assert services == ["auth_service", "facturation_service", "gateway"]


class _Process:
    """A started service that stops right after the stack is up, so ``main`` returns."""

    def __init__(self, args: list[str], **_: object) -> None:
        self.module = args[2]
        self.returncode: int | None = None

    def poll(self) -> int | None:
        return self.returncode

    def send_signal(self, _signal: int) -> None:
        self.returncode = 0

    def wait(self, timeout: float | None = None) -> int | None:
        return self.returncode


def _fake_stack(
    monkeypatch: pytest.MonkeyPatch,
    dev: ModuleType,
    *,
    popen: Any,
    wait_healthy: Any,
    post: Any,
    signal_handler: Any,
) -> None:
    """``main`` with its environment, migrations, processes, health checks, HTTP calls and
    signal handlers replaced."""
    env = {"AUTH_URL": "http://127.0.0.1:8001", "INTERNAL_TOKEN": "internal-token"}
    monkeypatch.setattr(dev, "build_environment", lambda: (dict(env), False))
    monkeypatch.setattr(dev.subprocess, "run", lambda *args, **kwargs: None)
    monkeypatch.setattr(dev.subprocess, "Popen", popen)
    monkeypatch.setattr(dev, "wait_healthy", wait_healthy)
    monkeypatch.setattr(dev.httpx, "post", post)
    monkeypatch.setattr(dev.signal, "signal", signal_handler)


def test_the_demo_user_is_registered_with_auth_before_the_gateway_starts(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A first login as soon as the gateway answers finds the demo user."""
    dev = _dev_script()
    steps: list[str] = []

    def popen(args: list[str], **options: object) -> _Process:
        process = _Process(args, **options)
        steps.append(f"start {process.module}")
        return process

    def post(url: str, **options: Any) -> httpx.Response:
        steps.append(f"post {url}")
        assert options["headers"] == {"X-Internal-Token": "internal-token"}
        assert options["json"]["email"] == "demo@example.com"
        return httpx.Response(201)

    def stop_when_up(name: str, url: str, process: _Process) -> None:
        if name == "gateway":  # the stack is up: its first look at the processes ends it
            process.returncode = 1

    _fake_stack(
        monkeypatch,
        dev,
        popen=popen,
        wait_healthy=stop_when_up,
        post=post,
        signal_handler=lambda *args: None,
    )

    assert dev.main() == 1
    assert steps == [
        "start stripe_sandbox",
        "start auth_service",
        "post http://127.0.0.1:8001/auth/register",
        "start facturation_service",
        "start gateway",
    ]


def test_once_stopping_a_second_interrupt_is_ignored_and_every_service_is_stopped(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """``kill`` on make's process group reaches the script twice (make passes SIGTERM on to
    its child); a second Ctrl-C is as common. Neither may cut the stop short."""
    dev = _dev_script()
    started: list[_Process] = []
    handlers: dict[int, Any] = {}

    def popen(args: list[str], **options: object) -> _Process:
        started.append(_Process(args, **options))
        return started[-1]

    def interrupted(_seconds: float) -> None:
        handlers[signal.SIGTERM](signal.SIGTERM, None)  # the first SIGTERM, while waiting

    def print_stopping(*args: object, **_options: object) -> None:
        # The second one arrives as the script says it is stopping.
        handler = handlers[signal.SIGTERM]
        if "stopping" in str(args) and callable(handler):
            try:
                handler(signal.SIGTERM, None)
            except KeyboardInterrupt:
                pytest.fail("a second SIGTERM interrupted the stop")

    _fake_stack(
        monkeypatch,
        dev,
        popen=popen,
        wait_healthy=lambda *args: None,
        post=lambda *args, **kwargs: httpx.Response(201),
        signal_handler=handlers.__setitem__,
    )
    monkeypatch.setattr(dev.time, "sleep", interrupted)
    monkeypatch.setattr("builtins.print", print_stopping)

    assert dev.main() == 0
    assert handlers[signal.SIGTERM] == signal.SIG_IGN
    assert handlers[signal.SIGINT] == signal.SIG_IGN
    assert len(started) == 4
    assert all(process.returncode == 0 for process in started)  # each was sent SIGTERM
