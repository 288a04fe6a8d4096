import logging
from datetime import date, datetime, timedelta

import pytest

from base.calendar import CHINA, WorkingDayCalendar


def at(y: int, m: int, d: int, h: int = 10) -> datetime:
    return datetime(y, m, d, h, tzinfo=CHINA)


def test_the_official_2026_calendar_holidays_and_make_up_days() -> None:
    calendar = WorkingDayCalendar()
    assert not calendar.is_working_day(date(2026, 10, 1))  # National Day
    assert not calendar.is_working_day(date(2026, 10, 7))
    assert calendar.is_working_day(date(2026, 9, 20))  # a make-up working Sunday (调休)
    assert calendar.is_working_day(date(2026, 10, 10))  # a make-up working Saturday
    assert not calendar.is_working_day(date(2026, 9, 27))  # an ordinary Sunday


def test_a_deadline_over_national_day_skips_the_holiday_and_counts_the_make_up_days() -> None:
    calendar = WorkingDayCalendar()
    # Requested Friday 18 September 2026; 5 working days: Sun 20 (make-up), Mon 21 .. Thu 24.
    assert calendar.add_working_days(at(2026, 9, 18), 5) == at(2026, 9, 25, 0)
    # Requested Tuesday 29 September; 5 working days: Wed 30, then the holiday 1-7 October, Thu 8, Fri 9,
    # Sat 10 (make-up), Mon 12: due at the end of 12 October.
    assert calendar.add_working_days(at(2026, 9, 29), 5) == at(2026, 10, 13, 0)


def test_working_time_between_instants_counts_only_working_days() -> None:
    calendar = WorkingDayCalendar()
    assert calendar.working_days_between(at(2026, 9, 30, 0), at(2026, 10, 8, 0)) == pytest.approx(1.0)
    assert calendar.working_days_between(at(2026, 9, 21, 12), at(2026, 9, 22, 0)) == pytest.approx(0.5)
    assert calendar.working_days_between(at(2026, 9, 22), at(2026, 9, 21)) == 0.0


def test_beyond_the_published_years_it_falls_back_to_monday_to_friday_and_says_so_once(
    caplog: pytest.LogCaptureFixture,
) -> None:
    calendar = WorkingDayCalendar()
    with caplog.at_level(logging.WARNING, logger="concord.calendar"):
        # Thursday 30 December 2027 + 3 working days: Fri 31, Mon 3, Tue 4 January 2028.
        assert calendar.add_working_days(at(2027, 12, 30), 3) == at(2028, 1, 5, 0)
        assert calendar.is_working_day(date(2027, 1, 1)) is True  # a Friday: New Year unknown, weekday counts
    assert calendar.fallback_years == {2027, 2028}
    warnings = [r for r in caplog.records if "not published" in r.getMessage()]
    assert len(warnings) == 2  # once per year, not once per day


def test_adding_working_time_is_the_inverse_of_measuring_it() -> None:
    calendar = WorkingDayCalendar()
    start = at(2026, 9, 29, 12)  # Tuesday noon before National Day
    later = calendar.add_working_time(start, 2.0)
    assert later == at(2026, 10, 8, 12)  # half of 29 Sep, all of 30 Sep, then the holiday, half of 8 Oct
    assert calendar.working_days_between(start, later) == pytest.approx(2.0)
    assert calendar.add_working_time(start, 0) == start


def test_working_days_over_years_count_each_day_once() -> None:
    calendar = WorkingDayCalendar()
    start = datetime(2025, 12, 31, 12, 0, tzinfo=CHINA)
    end = datetime(2029, 1, 2, 6, 0, tzinfo=CHINA)
    by_day = sum(calendar.is_working_day(start.date() + timedelta(days=i)) for i in range(1, (end - start).days + 1)
                 if start.date() + timedelta(days=i) < end.date())
    expected = 0.5 * calendar.is_working_day(start.date()) + by_day + 0.25 * calendar.is_working_day(end.date())
    assert calendar.working_days_between(start, end) == pytest.approx(expected)
    assert calendar.working_days_between(start, start + timedelta(hours=6)) == pytest.approx(0.25)


def test_whole_years_beyond_the_official_calendar_count_monday_to_friday() -> None:
    calendar = WorkingDayCalendar()
    start = datetime(2199, 12, 31, 0, 0, tzinfo=CHINA)  # a Tuesday
    end = datetime(2202, 1, 1, 0, 0, tzinfo=CHINA)
    by_day = sum((start.date() + timedelta(days=i)).weekday() < 5 for i in range((end - start).days))
    assert calendar.working_days_between(start, end) == pytest.approx(by_day)
