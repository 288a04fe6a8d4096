"""The live figures' arithmetic (no I/O): per-second buckets and the router's batch latency from its histogram."""

from __future__ import annotations

import pytest
from prometheus_client import CollectorRegistry, Histogram

from gateway.monitor import BatchLatency, Buckets, quantile


def test_buckets_count_a_window_and_a_series_per_minute() -> None:
    buckets = Buckets()
    for second, n in ((1000, 2), (1030, 3), (1090, 5)):
        buckets.add(second, ("in", "planning"), n)
    assert buckets.window(1090, 60) == {("in", "planning"): 5}  # the 60 seconds up to and including 1090
    assert buckets.window(1090, 90) == {("in", "planning"): 8}
    assert buckets.window(1090, 100) == {("in", "planning"): 10}
    assert buckets.per_minute(1090, 3) == {("in", "planning"): [0, 5, 5]}
    buckets.prune(1030 + 75 * 60)  # an hour and a quarter is kept
    assert set(buckets.seconds) == {1090}


def test_quantiles_from_cumulative_buckets_as_prometheus_estimates_them() -> None:
    cumulative = [(0.01, 50.0), (0.1, 90.0), (1.0, 100.0), (float("inf"), 100.0)]
    assert quantile(cumulative, 0.5) == pytest.approx(0.01)
    assert quantile(cumulative, 0.7) == pytest.approx(0.01 + 0.09 * 0.5)
    assert quantile(cumulative, 0.99) == pytest.approx(0.1 + 0.9 * 0.9)


def test_batch_latency_covers_what_the_histogram_saw_since_it_was_first_asked() -> None:
    histogram = Histogram("batches_test_seconds", "test", buckets=(0.01, 0.1, 1.0), registry=CollectorRegistry())
    latency = BatchLatency(histogram)
    histogram.observe(5.0)  # before the watch began: not in its window
    assert latency() is None
    for _ in range(99):
        histogram.observe(0.005)
    histogram.observe(0.5)
    p50, p99, batches = latency() or (0.0, 0.0, 0)
    assert batches == 100 and p50 == pytest.approx(5.05, rel=0.01) and 10 <= p99 <= 100
