"""`make dev` (scripts/dev.py) starts the sandbox from the checkout, where it lives now that a
production install leaves it out."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType

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
