"""The sandbox's start-up: served (``run_service``), it puts the objects alive once it is built
out of the collector's sight and collects its young objects less often, as the services do; a
test process that builds many apps does neither."""

from __future__ import annotations

import gc
from collections.abc import Iterator

import pytest

from shared._app import FREEZE_AFTER_STARTUP, YOUNG_COLLECTION_EVERY
from stripe_sandbox import SandboxSettings, create_app
from tests.support.lifespan import app_lifespan


@pytest.fixture
def unfrozen() -> Iterator[None]:
    thresholds = gc.get_threshold()
    gc.unfreeze()
    yield
    gc.unfreeze()
    gc.set_threshold(*thresholds)


@pytest.mark.usefixtures("unfrozen")
async def test_a_served_sandbox_freezes_its_start_up_objects(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv(FREEZE_AFTER_STARTUP, "1")

    async with app_lifespan(create_app(SandboxSettings())):
        frozen = gc.get_freeze_count()
        young = gc.get_threshold()[0]

    assert frozen > 0
    assert young == YOUNG_COLLECTION_EVERY


@pytest.mark.usefixtures("unfrozen")
async def test_a_sandbox_built_by_a_test_freezes_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(FREEZE_AFTER_STARTUP, raising=False)

    async with app_lifespan(create_app(SandboxSettings())):
        frozen = gc.get_freeze_count()
        young = gc.get_threshold()[0]

    assert frozen == 0
    assert young != YOUNG_COLLECTION_EVERY
