"""The request series recorded without Litestar's per-request objects."""

from __future__ import annotations

from prometheus_client import REGISTRY

from shared import RequestMetrics, metrics_config


def _in_progress(path: str) -> float | None:
    labels = {"method": "GET", "path": path, "status_code": "200", "app_name": "metrics-test"}
    return REGISTRY.get_sample_value("http_requests_in_progress", labels)


def test_requests_in_progress_are_read_when_scraped_and_shared_by_every_recorder() -> None:
    one, other = (RequestMetrics(metrics_config("metrics-test")) for _ in range(2))
    first = one.started("GET", "/in-progress")
    second = other.started("GET", "/in-progress")
    assert _in_progress("/in-progress") == 2
    one.finished(first, "GET", "/in-progress", 200, 0.01)
    assert _in_progress("/in-progress") == 1
    other.finished(second, "GET", "/in-progress", 503, 0.01)
    assert _in_progress("/in-progress") == 0
    done = {"method": "GET", "path": "/in-progress", "app_name": "metrics-test"}
    assert REGISTRY.get_sample_value("http_requests_total", {**done, "status_code": "200"}) == 1
    errors = REGISTRY.get_sample_value("http_requests_error_total", {**done, "status_code": "503"})
    assert errors == 1


def test_durations_fall_in_cumulative_buckets_with_their_sum_and_count() -> None:
    metrics = RequestMetrics(metrics_config("metrics-test"))
    for seconds in (0.004, 0.01, 0.3):
        metrics.finished(metrics.started("GET", "/timed"), "GET", "/timed", 200, seconds)
    labels = {"method": "GET", "path": "/timed", "status_code": "200", "app_name": "metrics-test"}

    def bucket(le: str) -> float | None:
        return REGISTRY.get_sample_value(
            "http_request_duration_seconds_bucket", {**labels, "le": le}
        )

    # An observation on a bound counts in its bucket, as prometheus_client counts it.
    assert [bucket(le) for le in ("0.005", "0.01", "0.25", "0.5", "+Inf")] == [1, 2, 2, 3, 3]
    assert REGISTRY.get_sample_value("http_request_duration_seconds_count", labels) == 3
    total = REGISTRY.get_sample_value("http_request_duration_seconds_sum", labels)
    assert total is not None
    assert abs(total - 0.314) < 1e-9
