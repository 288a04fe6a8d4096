"""The benchmark's figure for the router's own work times the benchmark's events routed, every one of them: a refusal
is cheaper than a route, and a figure over refusals would flatter the router."""

from __future__ import annotations

import pytest

from bench.routing import routing_us_per_event
from contracts.topics import Topics

TOPICS = Topics("benchtest")


def test_every_event_is_routed_and_timed() -> None:
    assert routing_us_per_event(50, TOPICS, 1_000_000, b"k" * 32) > 0


def test_a_refused_event_is_not_counted_as_routed() -> None:
    with pytest.raises(RuntimeError, match="only 0 of 20"):
        routing_us_per_event(20, TOPICS, 10, None)  # every payload over the limit: refused
