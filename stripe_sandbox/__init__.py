"""A stateful stand-in for the part of Stripe this system uses, for offline dev and tests."""

from __future__ import annotations

from stripe_sandbox.app import create_app
from stripe_sandbox.cards import DECLINED_CARD, FAILS_LATER_CARD, SUCCEEDING_CARD
from stripe_sandbox.objects import API_VERSION
from stripe_sandbox.settings import SandboxSettings
from stripe_sandbox.webhooks import signature_header

__all__ = [
    "API_VERSION",
    "DECLINED_CARD",
    "FAILS_LATER_CARD",
    "SUCCEEDING_CARD",
    "SandboxSettings",
    "create_app",
    "signature_header",
]
