"""The benchmark judges its secured run against issue 10's targets: a latency at most its bound, a ratio at least
its own, and a latency measured at another rate than the goal's is not judged."""

from __future__ import annotations

from dataclasses import replace

from rich.console import Console

from bench.router import GOALS, Figures, against_goals

FIGURES = Figures(
    raw_events_per_s=30_000, router_events_per_s=21_000, router_ratio=0.7, routers_2_events_per_s=30_000,
    routers_2_scaling=1.43, peer_events_per_s=5_000, latency_rate_per_s=1_000, latency_p50_ms=10.0,
    latency_p99_ms=30.5, latency_samples=10_000, eos_pipe_events_per_s=32_000, eos_pipe_latency_p50_ms=11.0,
    eos_pipe_latency_p99_ms=30.0, eos_pipe_3_events_per_s=14_000, confluent_pipe_events_per_s=48_000,
    confluent_pipe_latency_p50_ms=12.0, confluent_pipe_latency_p99_ms=49.0, confluent_pipe_3_events_per_s=30_000,
    routing_us_per_event=48.0, routing_ratio_bound=0.69, peer_latency_p50_ms=24.0,
    peer_latency_p99_ms=83.0, subscriber_latency_p50_ms=2.1, subscriber_latency_p99_ms=4.2,
    faststream_subscriber_latency_p50_ms=2.4, faststream_subscriber_latency_p99_ms=22.0)


def verdicts(figures: Figures) -> dict[str, object]:
    return {judged["figure"]: judged["met"] for judged in (goal.judge(figures) for goal in GOALS)}


def test_each_figure_is_judged_against_its_bound_in_its_direction() -> None:
    # at the bound is met either way; past it, not
    assert verdicts(FIGURES) == {"latency_p50_ms": True, "latency_p99_ms": False, "router_ratio": True,
                                 "routers_2_scaling": False}
    worse = replace(FIGURES, latency_p50_ms=10.1, router_ratio=0.69, routers_2_scaling=1.6, latency_p99_ms=30.0)
    assert verdicts(worse) == {"latency_p50_ms": False, "latency_p99_ms": True, "router_ratio": False,
                               "routers_2_scaling": True}


def test_a_latency_measured_at_another_rate_is_not_judged_and_the_goal_and_figure_are_reported() -> None:
    judged = {j["figure"]: j for j in (goal.judge(replace(FIGURES, latency_rate_per_s=500)) for goal in GOALS)}
    assert judged["latency_p50_ms"]["met"] is None and judged["latency_p99_ms"]["met"] is None
    assert judged["router_ratio"]["met"] is True  # a throughput goal holds at any latency rate
    assert judged["latency_p50_ms"]["goal"] == "≤ 10" and judged["latency_p50_ms"]["measured"] == 10.0
    assert judged["routers_2_scaling"]["goal"] == "≥ 1.6"


def test_the_table_shows_each_goal_its_target_the_figure_and_the_verdict() -> None:
    goals, table = against_goals(replace(FIGURES, latency_rate_per_s=500), 2)
    console = Console(width=200, record=True)
    console.print(table)
    text = console.export_text()
    assert "Against the targets (2 cores" in text
    rows = [line for line in text.splitlines() if "│" in line and "goal (issue 10)" not in line]
    assert len(rows) == len(GOALS) == len(goals)
    p50, _, ratio, scaling = rows
    assert "≤ 10" in p50 and "10.0" in p50 and "not at the goal's rate" in p50
    assert "≥ 0.7" in ratio and ratio.rstrip("│ ").endswith("yes")
    assert "1.43" in scaling and scaling.rstrip("│ ").endswith("no")
