"""The public gateway: route table, token check with a bounded decision cache, header hygiene and
a streaming proxy in front of the private auth and facturation services."""

from __future__ import annotations

from gateway.app import create_app, load
from gateway.routes import ROUTES, Route, match_route
from gateway.settings import GatewaySettings

__all__ = ["ROUTES", "GatewaySettings", "Route", "create_app", "load", "match_route"]
