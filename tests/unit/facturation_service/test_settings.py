"""Start-up: a missing Stripe key is one clear line, unless the sandbox is configured."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from facturation_service.settings import read_settings
from shared import SettingsError
from tests.support.processes import ROOT

BASE = {"INTERNAL_TOKEN": "t", "FACTURATION_DATABASE_URL": "sqlite:///unused.db"}


def test_missing_stripe_key_without_sandbox_is_a_settings_error(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for name in ("STRIPE_SECRET_KEY", "STRIPE_API_BASE"):
        monkeypatch.delenv(name, raising=False)
    for name, value in BASE.items():
        monkeypatch.setenv(name, value)

    with pytest.raises(SettingsError, match="STRIPE_SECRET_KEY"):
        read_settings()


@pytest.mark.parametrize(
    "stripe_env",
    [{"STRIPE_API_BASE": "http://127.0.0.1:12111"}, {"STRIPE_SECRET_KEY": "sk_test_x"}],
)
def test_a_stripe_key_or_the_sandbox_url_is_enough(
    monkeypatch: pytest.MonkeyPatch, stripe_env: dict[str, str]
) -> None:
    for name in ("STRIPE_SECRET_KEY", "STRIPE_API_BASE"):
        monkeypatch.delenv(name, raising=False)
    for name, value in {
        **BASE,
        **stripe_env,
        "CHECKOUT_RETURN_ORIGINS": "https://a,https://b",
    }.items():
        monkeypatch.setenv(name, value)

    settings = read_settings()

    assert settings.checkout_return_origins == ["https://a", "https://b"]
    assert settings.stripe_api_key.startswith("sk_")


def test_the_service_refuses_to_start_without_a_stripe_key_in_one_line() -> None:
    env = {k: v for k, v in os.environ.items() if k not in ("STRIPE_SECRET_KEY", "STRIPE_API_BASE")}
    result = subprocess.run(
        [sys.executable, "-m", "facturation_service", "serve", "--port", "1"],
        env={**env, **BASE},
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )

    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        "facturation: missing required setting STRIPE_SECRET_KEY (or set STRIPE_API_BASE to the"
        " sandbox)"
    ]


def test_the_database_pool_keeps_twenty_connections_and_a_bad_size_is_refused(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for name, value in {**BASE, "STRIPE_API_BASE": "http://127.0.0.1:12111"}.items():
        monkeypatch.setenv(name, value)
    for name in ("FACTURATION_DATABASE_POOL_SIZE", "FACTURATION_DATABASE_MAX_OVERFLOW"):
        monkeypatch.delenv(name, raising=False)

    settings = read_settings()
    monkeypatch.setenv("FACTURATION_DATABASE_POOL_SIZE", "0")

    assert (
        settings.facturation_database_pool_size,
        settings.facturation_database_max_overflow,
    ) == (
        20,
        10,
    )
    with pytest.raises(SettingsError, match="FACTURATION_DATABASE_POOL_SIZE"):
        read_settings()
