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
        self._years: dict[int, int] = {}  # working days in a whole year

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
        first, last = start.date(), end.date()

        def share(day: date) -> float:
            if not self.is_working_day(day):
                return 0.0
            day_start = datetime.combine(day, time(0), CHINA)
            lo, hi = max(start, day_start), min(end, day_start + timedelta(days=1))
            return max((hi - lo).total_seconds(), 0.0) / 86400

        if first == last:
            return share(first)
        return share(first) + self._working_days_in(first + timedelta(days=1), last - timedelta(days=1)) + share(last)

    def _working_days_in(self, first: date, last: date) -> int:
        """Working days from ``first`` to ``last``, both counted: whole years at once (a span of years, as an
        accelerated clock makes, costs a lookup per year rather than per day)."""
        count, day = 0, first
        while day <= last:
            if (day.month, day.day) == (1, 1) and date(day.year, 12, 31) <= last:
                count += self._year(day.year)
                day = date(day.year + 1, 1, 1)
            else:
                count += self.is_working_day(day)
                day += timedelta(days=1)
        return count

    def _year(self, year: int) -> int:
        found = self._years.get(year)
        if found is None:
            first = date(year, 1, 1)
            self.is_working_day(first)  # finds out whether the official calendar knows the year
            days = (date(year + 1, 1, 1) - first).days
            if year in self.fallback_years:  # Monday to Friday, counted without a lookup per day
                found = sum(1 for i in range(days) if (first.weekday() + i) % 7 < 5)
            else:
                found = sum(self.is_working_day(first + timedelta(days=i)) for i in range(days))
            self._years[year] = found
        return found
