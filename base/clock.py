"""Time, injectable: the system clock, or one shared accelerated clock for demos and tests.

A stack has one clock for everything that runs on it: ``concord clock set --speed N`` (or ``concord stack up
--clock-speed N``) records it in the stack's folder (``clock.json``), and every process and command reads it
there, following a change while it runs. The environment may give a clock instead (``CONCORD_CLOCK_START``,
``CONCORD_CLOCK_SPEED`` and ``CONCORD_CLOCK_ANCHOR``, all three, as the tests do); a partial one is an error
that says what to set."""

from __future__ import annotations

import os
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Protocol

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, ValidationError

from base.errors import Explained
from base.settings import Settings

CLOCK_FILE = "clock.json"
RELOAD_SECONDS = 1.0  # how often a running process looks whether the stack's clock was set anew


class Clock(Protocol):
    def now(self) -> datetime: ...

    def real_seconds(self, span: timedelta) -> float:
        """How long ``span`` of this clock's time takes in real time."""


class ClockMisconfigured(Explained, ValueError):
    """The clock settings cannot give one clock; the message says what to set."""


class SystemClock:
    def now(self) -> datetime:
        return datetime.now(UTC)

    def real_seconds(self, span: timedelta) -> float:
        return span.total_seconds()


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

    def real_seconds(self, span: timedelta) -> float:
        return span.total_seconds() / self.speed


class ClockSetting(BaseModel):
    """A stack's recorded clock."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    start: AwareDatetime
    speed: float = Field(gt=0, le=10_000_000)
    anchor: float

    def clock(self) -> AcceleratedClock:
        return AcceleratedClock(self.start, self.speed, self.anchor)


def clock_file(settings: Settings) -> Path:
    return settings.stack_path / CLOCK_FILE


def recorded(settings: Settings) -> ClockSetting | None:
    """The clock the stack records, if any."""
    path = clock_file(settings)
    try:
        return ClockSetting.model_validate_json(path.read_bytes())
    except FileNotFoundError:
        return None
    except (ValidationError, ValueError) as exc:
        raise ClockMisconfigured(f"{path} is not a clock setting ({exc.__class__.__name__}): "
                                 "`concord clock set --speed N` writes a new one, `concord clock real` removes it"
                                 ) from exc


class StackClock:
    """The stack's recorded clock (real time while none is recorded), followed as it is set anew: simulated time
    goes on from where it was, at the new speed, in every process at once."""

    def __init__(self, settings: Settings) -> None:
        self.path = clock_file(settings)
        self._settings = settings
        self._checked = 0.0
        self._stamp: tuple[int, int] | None = None
        self._clock: Clock = SystemClock()
        self._reload()

    def _reload(self) -> None:
        self._checked = time.monotonic()
        try:
            stat = self.path.stat()
            stamp: tuple[int, int] | None = (stat.st_mtime_ns, stat.st_size)
        except FileNotFoundError:
            stamp = None
        if stamp != self._stamp:
            setting = recorded(self._settings)
            self._clock = setting.clock() if setting else SystemClock()
            self._stamp = stamp

    def _current(self) -> Clock:
        if time.monotonic() - self._checked >= RELOAD_SECONDS:
            self._reload()
        return self._clock

    def now(self) -> datetime:
        return self._current().now()

    def real_seconds(self, span: timedelta) -> float:
        """At the speed it runs now (a clock set anew later changes it: a wait should look again, RELOAD_SECONDS
        at the most)."""
        return self._current().real_seconds(span)


def clock_from(settings: Settings) -> Clock:
    """The clock a process or command runs on: the one the environment gives (complete), else the stack's."""
    given = {"CONCORD_CLOCK_START": settings.clock_start, "CONCORD_CLOCK_SPEED": settings.clock_speed,
             "CONCORD_CLOCK_ANCHOR": settings.clock_anchor}
    missing = [name for name, value in given.items() if value is None]
    if len(missing) == len(given):
        return StackClock(settings)
    if missing:
        raise ClockMisconfigured(
            f"a clock in the environment needs {', '.join(missing)} as well (the same in every process); "
            "to give the whole stack one clock, unset the CONCORD_CLOCK_* variables and run "
            "`concord clock set --speed N`")
    assert settings.clock_start is not None and settings.clock_speed is not None
    return AcceleratedClock(settings.clock_start, settings.clock_speed, settings.clock_anchor)


def record(settings: Settings, speed: float, start: datetime | None = None) -> ClockSetting:
    """Record the stack's clock: ``speed`` times real time from ``start`` (by default, from the simulated now, so
    that time never goes back). Running processes follow within a second."""
    if speed <= 0:
        raise ClockMisconfigured("the clock's speed must be above 0 (1 is real time)")
    if start is not None and start.tzinfo is None:
        raise ClockMisconfigured("give the start with its time zone, e.g. 2026-03-02T09:00:00+08:00")
    setting = ClockSetting(start=start or StackClock(settings).now(), speed=speed, anchor=time.time())
    path = clock_file(settings)
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_suffix(".tmp")
    temporary.write_text(setting.model_dump_json(), encoding="utf-8")
    os.replace(temporary, path)  # whole or not at all, for the processes reading it
    return setting


def forget(settings: Settings) -> None:
    """Back to real time for the whole stack."""
    clock_file(settings).unlink(missing_ok=True)
