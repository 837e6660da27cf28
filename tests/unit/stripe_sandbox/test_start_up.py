"""The sandbox's start-up: served (``run_service``), it puts the objects alive once it is built
out of the collector's sight, as the services do; a test process that builds many apps does not."""

from __future__ import annotations

import gc
from collections.abc import Iterator

import pytest

from shared._app import FREEZE_AFTER_STARTUP
from stripe_sandbox import SandboxSettings, create_app
from tests.support.lifespan import app_lifespan


@pytest.fixture
def unfrozen() -> Iterator[None]:
    gc.unfreeze()
    yield
    gc.unfreeze()


@pytest.mark.usefixtures("unfrozen")
async def test_a_served_sandbox_freezes_its_start_up_objects(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv(FREEZE_AFTER_STARTUP, "1")

    async with app_lifespan(create_app(SandboxSettings())):
        frozen = gc.get_freeze_count()

    assert frozen > 0


@pytest.mark.usefixtures("unfrozen")
async def test_a_sandbox_built_by_a_test_freezes_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(FREEZE_AFTER_STARTUP, raising=False)

    async with app_lifespan(create_app(SandboxSettings())):
        frozen = gc.get_freeze_count()

    assert frozen == 0
