"""Prometheus ``/metrics``: request counts and latency by route template, per service."""

from __future__ import annotations

from litestar.plugins.prometheus import PrometheusConfig, PrometheusController

from shared._internal import PUBLIC_ROUTE

__all__ = ["MetricsController", "metrics_config"]


class MetricsController(PrometheusController):
    path = "/metrics"
    opt = {PUBLIC_ROUTE: True}
    include_in_schema = False


def metrics_config(service: str) -> PrometheusConfig:
    return PrometheusConfig(
        app_name=service,
        prefix="http",
        group_path=True,
        exclude=["/metrics", "/healthz", "/readyz"],
    )
