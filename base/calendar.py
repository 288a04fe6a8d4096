"""Working days on China's official calendar (public holidays and make-up working weekends, 调休),
from the ``chinese-calendar`` package. Beyond the years it knows, Monday to Friday, said once in the log."""

from __future__ import annotations

import logging
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import chinese_calendar

log = logging.getLogger("concord.calendar")
CHINA = ZoneInfo("Asia/Shanghai")


class WorkingDayCalendar:
    def __init__(self) -> None:
        self.fallback_years: set[int] = set()
        # Each day looked up once: deadlines walk the calendar day by day, thousands of times a second under load
        # (chinese-calendar validates every date it is asked about, and raises beyond the years it knows).
        self._working: dict[date, bool] = {}

    def is_working_day(self, day: date) -> bool:
        working = self._working.get(day)
        if working is None:
            working = self._working[day] = self._look_up(day)
        return working

    def _look_up(self, day: date) -> bool:
        try:
            return bool(chinese_calendar.is_workday(day))
        except NotImplementedError:
            if day.year not in self.fallback_years:
                self.fallback_years.add(day.year)
                log.warning("the official calendar of %d is not published in chinese-calendar: "
                            "counting Monday to Friday as working days", day.year)
            return day.weekday() < 5

    def add_working_days(self, start: datetime, days: int) -> datetime:
        """The deadline of a time limit of ``days`` working days from ``start``: the end of the
        ``days``-th working day after the day of ``start`` (that day itself is not counted)."""
        day = start.astimezone(CHINA).date()
        counted = 0
        while counted < days:
            day += timedelta(days=1)
            if self.is_working_day(day):
                counted += 1
        return datetime.combine(day + timedelta(days=1), time(0), CHINA)

    def add_working_time(self, start: datetime, days: float) -> datetime:
        """The instant at which ``days`` working days of working time have passed since ``start``: the
        inverse of working_days_between (rest days and holidays do not count)."""
        at = start.astimezone(CHINA)
        remaining = days * 86400
        while True:
            midnight = datetime.combine(at.date() + timedelta(days=1), time(0), CHINA)
            if self.is_working_day(at.date()):
                available = (midnight - at).total_seconds()
                if remaining <= available:
                    return at + timedelta(seconds=remaining)
                remaining -= available
            at = midnight

    def working_days_between(self, start: datetime, end: datetime) -> float:
        """Working time between two instants, in working days: each working day counts for the share of
        it that lies between them; holidays and rest days count nothing."""
        if end <= start:
            return 0.0
        start, end = start.astimezone(CHINA), end.astimezone(CHINA)
        total = 0.0
        day = start.date()
        while day <= end.date():
            if self.is_working_day(day):
                day_start = datetime.combine(day, time(0), CHINA)
                lo = max(start, day_start)
                hi = min(end, day_start + timedelta(days=1))
                total += max((hi - lo).total_seconds(), 0.0) / 86400
            day += timedelta(days=1)
        return total
