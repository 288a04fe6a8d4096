"""The demo's and chaos's front desk (deploy.demo.CaseDriver): cases are submitted as the simulated days go by, spread
over the arrival window it is given, against an in-memory bureau."""

from __future__ import annotations

import json
from datetime import datetime, timedelta

import httpx

from base.calendar import CHINA, WorkingDayCalendar
from deploy.demo import ARRIVAL_WORKING_DAYS, CaseDriver

MONDAY = datetime(2026, 3, 2, 9, 0, tzinfo=CHINA)


class StoppedClock:
    def __init__(self, at: datetime) -> None:
        self.at = at

    def now(self) -> datetime:
        return self.at

    def real_seconds(self, span: timedelta) -> float:
        return 0.0


def front_desk(submitted: list[str]) -> httpx.Client:
    """A bureau that takes every application and has no case to show yet."""

    def answer(request: httpx.Request) -> httpx.Response:
        if request.method == "POST":
            submitted.append(json.loads(request.content)["applicant_name"])
            return httpx.Response(201, json={"case_id": f"G-{len(submitted)}", "case_token": "t"})
        return httpx.Response(200, json={"cases": []})

    return httpx.Client(transport=httpx.MockTransport(answer), base_url="http://bureau")


def submitted_by(at: datetime, window: float | None) -> int:
    """How many of ten cases have been submitted once the clock, started on MONDAY, reads ``at``."""
    clock = StoppedClock(MONDAY)
    submitted: list[str] = []
    with front_desk(submitted) as bureau:
        driver = CaseDriver(clock, 10, 7, bureau) if window is None else CaseDriver(clock, 10, 7, bureau, window)
        clock.at = at
        driver.tick()
    assert driver.submitted == len(submitted)
    return len(submitted)


def after(working_days: float) -> datetime:
    return WorkingDayCalendar().add_working_time(MONDAY, working_days)


def test_cases_come_in_evenly_over_the_window_given() -> None:
    assert submitted_by(MONDAY, 5) == 1  # the first at once
    assert submitted_by(MONDAY + (after(5) - MONDAY) / 2, 5) == 6  # half of them half-way, the first included
    assert submitted_by(after(5), 5) == 10


def test_by_default_cases_come_in_over_a_month_of_working_days() -> None:
    assert submitted_by(after(5), None) == 3  # a week of a month
    assert submitted_by(after(ARRIVAL_WORKING_DAYS), None) == 10
