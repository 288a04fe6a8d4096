"""Time, injectable: the system clock, or one shared accelerated clock for demos and tests."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from typing import Protocol

from base.settings import Settings


class Clock(Protocol):
    def now(self) -> datetime: ...


class SystemClock:
    def now(self) -> datetime:
        return datetime.now(UTC)


class AcceleratedClock:
    """Simulated time that starts at ``start`` when the epoch ``anchor`` (a real instant) was, and runs
    ``speed`` times faster than real time. Processes that share start, anchor and speed share the clock."""

    def __init__(self, start: datetime, speed: float, anchor: float | None = None) -> None:
        if start.tzinfo is None:
            raise ValueError("the clock's start must carry a time zone")
        self.start = start
        self.speed = speed
        self.anchor = time.time() if anchor is None else anchor

    def now(self) -> datetime:
        return self.start + timedelta(seconds=(time.time() - self.anchor) * self.speed)


def clock_from(settings: Settings) -> Clock:
    """The system clock, or the shared accelerated clock when the settings give a start instant."""
    if settings.clock_start is None:
        return SystemClock()
    return AcceleratedClock(settings.clock_start, settings.clock_speed, settings.clock_anchor)
