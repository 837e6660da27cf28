"""The Stripe SDK's request logs: the same lines when the ``stripe`` logger is on, no formatting
at all when nothing would write them (facturation_service/stripe_logs.py)."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import pytest
from stripe import _api_requestor, _util

from facturation_service.stripe_api import StripeApi
from facturation_service.stripe_logs import log_stripe_requests_only_when_enabled


@pytest.fixture
def formatted(monkeypatch: pytest.MonkeyPatch) -> list[dict[str, Any]]:
    """Every log line the SDK formats (``stripe._util.logfmt``, which its log functions call)."""
    lines: list[dict[str, Any]] = []
    logfmt: Callable[[dict[str, Any]], str] = _util.logfmt

    def spy(props: dict[str, Any]) -> str:
        lines.append(props)
        return logfmt(props)

    monkeypatch.setattr(_util, "logfmt", spy)
    monkeypatch.setattr(_util, "STRIPE_LOG", None)
    return lines


async def _create_customer(stripe_api: StripeApi) -> None:
    await stripe_api.create_customer(
        user_id="u-1", email="ada@example.com", name=None, idempotency_key="customer-u-1"
    )


async def test_with_the_stripe_logger_quiet_nothing_is_formatted(
    stripe_api: StripeApi, formatted: list[dict[str, Any]], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="stripe")

    await _create_customer(stripe_api)

    assert formatted == []
    assert [r for r in caplog.records if r.name == "stripe"] == []


async def test_with_the_stripe_logger_at_debug_the_sdk_writes_its_lines(
    stripe_api: StripeApi, formatted: list[dict[str, Any]], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="stripe")

    await _create_customer(stripe_api)

    messages = [r.getMessage() for r in caplog.records if r.name == "stripe"]
    assert any(m.startswith("message='Request to Stripe api' method=post") for m in messages)
    assert any("message='API response body'" in m and "cus_" in m for m in messages)
    assert {line["message"] for line in formatted} >= {
        "Request to Stripe api",
        "Post details",
        "Stripe API response",
        "API response body",
    }


async def test_at_info_only_the_info_lines_are_formatted(
    stripe_api: StripeApi, formatted: list[dict[str, Any]], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="stripe")

    await _create_customer(stripe_api)

    assert {line["message"] for line in formatted} == {
        "Request to Stripe api",
        "Stripe API response",
    }


def test_gating_twice_wraps_once() -> None:
    log_stripe_requests_only_when_enabled()
    gated = vars(_api_requestor)["log_debug"]
    log_stripe_requests_only_when_enabled()
    assert vars(_api_requestor)["log_debug"] is gated
