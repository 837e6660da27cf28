"""Prometheus ``/metrics``: request counts and latency by route template, per service.

The series are Litestar's (``http_requests_total``, ``http_request_duration_seconds``,
``http_requests_in_progress``, ``http_requests_error_total``, labelled ``method``, ``path``,
``status_code``, ``app_name``); :class:`RequestMetrics` records them as plain numbers, collected
when scraped, and :class:`LeanPrometheusMiddleware` uses it instead of building a ``Request``, a
label dict and a ``functools.wraps`` closure on every request (a quarter of the gateway's
per-request CPU when measured).
"""

from __future__ import annotations

import math
import time
from bisect import bisect_left
from collections.abc import Callable, Iterator
from itertools import accumulate
from typing import TYPE_CHECKING, Any

from litestar.enums import ScopeType
from litestar.middleware import DefineMiddleware
from litestar.plugins.prometheus import PrometheusConfig, PrometheusController
from litestar.plugins.prometheus.middleware import PrometheusMiddleware
from prometheus_client import REGISTRY, Histogram
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector
from prometheus_client.utils import floatToGoString

from shared._internal import PUBLIC_ROUTE

if TYPE_CHECKING:
    from litestar.types import ASGIApp, Message, Receive, Scope, Send

__all__ = [
    "InFlight",
    "LeanPrometheusMiddleware",
    "MetricsController",
    "RequestMetrics",
    "metrics_config",
    "metrics_middleware",
]


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


class InFlight:
    """Requests in progress under one label set, read when scraped."""

    __slots__ = ("count",)

    def __init__(self) -> None:
        self.count = 0


class _Done:
    """Finished requests under one label set: their count, their summed duration and how many
    fell in each of the histogram's buckets (not cumulated: that is done when scraped)."""

    __slots__ = ("buckets", "count", "created", "seconds")

    def __init__(self, buckets: int) -> None:
        self.count = 0
        self.seconds = 0.0
        self.buckets = [0] * buckets
        self.created = time.time()


_LABELS = ("method", "path", "status_code", "app_name")
_bucket_label: Callable[[float], str] = floatToGoString  # as prometheus_client writes ``le``


class _RequestSeries(Collector):
    """A process's request series (Litestar's names and labels), as plain numbers.

    prometheus_client's counters and histogram take a lock for each update: four locks a
    request (the count, the duration's sum and bucket, and the in-progress gauge twice), about
    3 % of the gateway's CPU per proxied request. Every request is recorded on the event loop's
    thread, and so is every scrape (``/metrics`` is an async handler): plain numbers are enough.
    The series are registered once per process and shared by every app in it, as Litestar's
    metric objects are.
    """

    def __init__(self, prefix: str, bounds: tuple[float, ...]) -> None:
        self.prefix = prefix
        self.bounds = bounds
        self.done: dict[tuple[str, str, int, str], _Done] = {}
        self.running: dict[tuple[str, str, str], InFlight] = {}

    def collect(self) -> Iterator[Metric]:
        prefix = self.prefix
        requests = CounterMetricFamily(f"{prefix}_requests", "Total requests", labels=_LABELS)
        errors = CounterMetricFamily(
            f"{prefix}_requests_error", "Total errors in requests", labels=_LABELS
        )
        durations = HistogramMetricFamily(
            f"{prefix}_request_duration_seconds", "Request duration, in seconds", labels=_LABELS
        )
        in_progress = GaugeMetricFamily(
            f"{prefix}_requests_in_progress",
            "Total requests currently in progress",
            labels=_LABELS,
        )
        bounds = [_bucket_label(bound) for bound in self.bounds]
        for (method, path, status, app_name), done in list(self.done.items()):
            labels = (method, path, str(status), app_name)
            requests.add_metric(labels, done.count, created=done.created)
            if status >= 500:
                errors.add_metric(labels, done.count, created=done.created)
            durations.add_metric(
                labels, list(zip(bounds, accumulate(done.buckets), strict=True)), done.seconds
            )
        for (method, path, app_name), running in list(self.running.items()):
            # Litestar labels the gauge with the status a request starts with.
            in_progress.add_metric((method, path, "200", app_name), running.count)
        yield from (requests, errors, durations, in_progress)


# By prefix: one set of series per process, whatever the number of apps in it.
_SERIES: dict[str, _RequestSeries] = {}


def _series(config: PrometheusConfig) -> _RequestSeries:
    series = _SERIES.get(config.prefix)
    if series is None:
        bounds = tuple(float(bound) for bound in config.buckets or Histogram.DEFAULT_BUCKETS)
        if bounds[-1] != math.inf:
            bounds += (math.inf,)
        series = _SERIES[config.prefix] = _RequestSeries(config.prefix, bounds)
        REGISTRY.register(series)
    return series


class RequestMetrics:
    """One service's request series, in the process's :class:`_RequestSeries`."""

    def __init__(self, config: PrometheusConfig) -> None:
        self.app_name = config.app_name
        self._series = _series(config)

    def started(self, method: str, path: str) -> InFlight:
        """Count a request in progress; returns what to pass to :meth:`finished`."""
        series = self._series
        key = (method, path, self.app_name)
        running = series.running.get(key)
        if running is None:
            running = series.running[key] = InFlight()
        running.count += 1
        return running

    def finished(
        self, running: InFlight, method: str, path: str, status: int, seconds: float
    ) -> None:
        running.count -= 1
        series = self._series
        key = (method, path, status, self.app_name)
        done = series.done.get(key)
        if done is None:
            done = series.done[key] = _Done(len(series.bounds))
        done.count += 1
        done.seconds += seconds
        done.buckets[bisect_left(series.bounds, seconds)] += 1


class LeanPrometheusMiddleware(PrometheusMiddleware):
    """Litestar's Prometheus middleware (same series, exclusions and grouping by route
    template), recording through :class:`RequestMetrics`."""

    def __init__(self, app: ASGIApp, config: PrometheusConfig) -> None:
        super().__init__(app, config)
        self._recorder = RequestMetrics(config)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        method = scope["method"] if scope["type"] == ScopeType.HTTP else scope["type"]
        path = scope["path_template"] if self._config.group_path else scope["path"]
        started = time.perf_counter()
        span: list[Any] = [200, 0.0]

        async def send_observed(message: Message) -> None:
            if message["type"] == "http.response.start":
                span[0] = message["status"]
            elif message["type"] == "http.response.body":
                span[1] = time.perf_counter() - started
            await send(message)

        running = self._recorder.started(method, path)
        try:
            await self.app(scope, receive, send_observed)
        finally:
            self._recorder.finished(running, method, path, span[0], span[1])


def metrics_middleware(config: PrometheusConfig) -> DefineMiddleware:
    return DefineMiddleware(LeanPrometheusMiddleware, config=config)
