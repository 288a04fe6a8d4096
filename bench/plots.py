"""The benchmark's figures as pictures beside its bench.json: the latency CDF of each pipe measured at the same
rate, and throughput by pipe and by router count."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only: no display here

import matplotlib.pyplot as plt  # after the backend is chosen


def latency_cdf(samples: Mapping[str, Sequence[float]], rate: int, title: str, path: Path) -> Path:
    """One line per pipe: the share of events delivered within x milliseconds (x logarithmic)."""
    figure, axes = plt.subplots(figsize=(8, 5))
    for name, ordered in samples.items():
        if ordered:
            shares = [(i + 1) / len(ordered) for i in range(len(ordered))]
            axes.plot(list(ordered), shares, label=f"{name} ({len(ordered):,} events)")
    axes.set_xscale("log")
    axes.set_xlabel("ingress produce → output consumed (read_committed), ms")
    axes.set_ylabel("share of events")
    axes.set_title(f"{title}: latency at {rate:,} events/s")
    for share in (0.5, 0.99):
        axes.axhline(share, color="grey", linewidth=0.5, linestyle="--")
    axes.grid(True, which="both", linewidth=0.3)
    axes.legend(loc="lower right")
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)
    return path


def throughput(rates: Mapping[str, float], title: str, path: Path) -> Path:
    """One bar per pipe (events/s over the same preload)."""
    figure, axes = plt.subplots(figsize=(11, 5))
    names = list(rates)
    colours = ["#888888", "#1f77b4", "#2ca02c", "#d62728", "#bbbbbb", "#555555"]
    bars = axes.bar(names, [rates[n] for n in names], color=colours[:len(names)])
    axes.bar_label(bars, labels=[f"{rates[n]:,.0f}" for n in names])
    axes.set_ylabel("events/s")
    axes.set_title(f"{title}: throughput")
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)
    return path
