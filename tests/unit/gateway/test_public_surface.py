from __future__ import annotations

import gateway


def test_public_surface() -> None:
    assert set(gateway.__all__) == {
        "ROUTES",
        "GatewaySettings",
        "Route",
        "create_app",
        "load",
        "match_route",
    }
    for name in gateway.__all__:
        assert hasattr(gateway, name)
