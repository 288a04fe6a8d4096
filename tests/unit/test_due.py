"""Work that falls due on the stack's clock (a desk's decisions, the bureau's deadlines and answers): the worker
waits, in real time, until its next piece of work is due (however fast the clock runs), or until its department
commits something that may change that, and looks again then; never longer than ``IDLE_SECONDS``."""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta
from pathlib import Path

import pytest

from base.calendar import CHINA
from base.clock import AcceleratedClock, StackClock, SystemClock, record
from base.settings import Settings
from services.bureau.service import Bureau
from services.kit.due import IDLE_SECONDS, until_due
from tests.unit.test_desks import SETTINGS, planning_desk

START = datetime(2026, 3, 2, 9, 0, tzinfo=CHINA)


def test_a_span_of_a_clocks_time_lasts_as_long_in_real_time_as_its_speed_says(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    hour = timedelta(hours=1)
    assert SystemClock().real_seconds(hour) == 3600.0
    assert AcceleratedClock(START, 1000.0).real_seconds(hour) == pytest.approx(3.6)
    monkeypatch.setattr("base.clock.RELOAD_SECONDS", 0.0)  # look at the file on every reading
    settings = Settings(stack_dir=tmp_path)
    stack = StackClock(settings)
    assert stack.real_seconds(hour) == 3600.0  # no clock recorded: real time
    record(settings, 100_000.0, START)
    assert stack.real_seconds(hour) == pytest.approx(0.036)
    record(settings, 10.0)  # set anew while it runs: the span lasts as long as the new speed says
    assert stack.real_seconds(hour) == pytest.approx(360.0)


def test_the_next_look_is_when_the_next_work_is_due_and_never_later_than_the_idle_bound() -> None:
    clock = AcceleratedClock(START, 100_000.0)
    now = clock.now()
    assert until_due(None, clock) == IDLE_SECONDS  # nothing open, or officers decide
    assert until_due(now - timedelta(days=1), clock) == 0.0  # overdue: at once
    in_ten_minutes = until_due(now + timedelta(minutes=10), clock)
    assert 0.0 < in_ten_minutes <= 600 / 100_000
    assert until_due(now + timedelta(days=30), clock) == IDLE_SECONDS  # far off: looked at again meanwhile


class Looking:
    """A worker's looks, each told as it happens; each says the next work is due an hour of real time later."""

    def __init__(self) -> None:
        self.looks = 0
        self.looked: asyncio.Queue[int] = asyncio.Queue()

    async def look(self) -> float:
        self.looks += 1
        self.looked.put_nowait(self.looks)
        return 3600.0

    async def next(self) -> int:
        return await asyncio.wait_for(self.looked.get(), 5)


@pytest.mark.parametrize("worker", ["desk", "bureau"])
async def test_a_waiting_worker_looks_again_as_soon_as_its_department_commits_and_stops_when_told(
        worker: str, monkeypatch: pytest.MonkeyPatch) -> None:
    looking = Looking()
    stop = asyncio.Event()
    if worker == "desk":
        desk = planning_desk()
        monkeypatch.setattr(desk, "look", looking.look)
        service, working = desk.service, asyncio.create_task(desk.work(stop))
    else:
        bureau = Bureau(SETTINGS, SystemClock())
        monkeypatch.setattr(bureau, "look", looking.look)
        service, working = bureau.service, asyncio.create_task(bureau.watch(stop))
    assert await looking.next() == 1
    service.committed()  # a task opened or a case moved, say: its department committed a unit of work
    assert await looking.next() == 2
    stop.set()
    await asyncio.wait_for(working, 5)  # not an hour: stopping wakes it
    assert looking.looks == 2


async def test_a_look_that_fails_is_tried_again_shortly_and_the_worker_goes_on(
        monkeypatch: pytest.MonkeyPatch) -> None:
    desk = planning_desk()
    looking = Looking()

    async def failing_first() -> float:
        if looking.looks == 0:
            looking.looks += 1
            looking.looked.put_nowait(looking.looks)
            raise ConnectionError("PostgreSQL is restarting")
        return await looking.look()

    monkeypatch.setattr(desk, "look", failing_first)
    stop = asyncio.Event()
    working = asyncio.create_task(desk.work(stop))
    assert await looking.next() == 1
    assert await looking.next() == 2  # no commit told it: the retry after the failure did
    stop.set()
    await asyncio.wait_for(working, 5)
    assert looking.looks == 2
