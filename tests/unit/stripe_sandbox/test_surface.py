from __future__ import annotations

import stripe

import stripe_sandbox


def test_public_surface() -> None:
    assert sorted(stripe_sandbox.__all__) == [
        "API_VERSION",
        "DECLINED_CARD",
        "FAILS_LATER_CARD",
        "SUCCEEDING_CARD",
        "SandboxSettings",
        "create_app",
        "signature_header",
    ]


def test_objects_use_the_api_version_stripe_python_pins() -> None:
    assert stripe.api_version == stripe_sandbox.API_VERSION
