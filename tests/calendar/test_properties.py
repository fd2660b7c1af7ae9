"""Properties of the arithmetic, checked against a plain day-by-day reference, and speed."""

import datetime as dt
import time

from hypothesis import given, settings, strategies as st

from servq.core.calendar import BusinessCalendar

UTC = dt.timezone.utc
LUNCH = ["09:00-12:00", "13:00-18:00"]
CALENDARS = [
    BusinessCalendar.from_dict({"timezone": "Asia/Shanghai", "country": "CN",
                                "working_hours": {d: LUNCH for d in ["mon", "tue", "wed", "thu", "fri"]},
                                "extra_working_days": ["2026-11-28"], "extra_holidays": ["2026-12-24"]}),
    BusinessCalendar.from_dict({"timezone": "America/New_York", "country": "US", "subdivision": "NY",
                                "working_hours": {"mon": LUNCH, "tue": LUNCH, "wed": ["08:00-20:00"],
                                                  "thu": LUNCH, "fri": ["09:00-15:00"],
                                                  "sat": ["10:00-14:00"], "sun": ["00:30-03:30"]}}),
    BusinessCalendar.from_dict({"timezone": "Europe/Berlin", "country": "DE", "working_hours": {
        d: ["00:00-24:00"] for d in ["mon", "tue", "wed", "thu", "fri", "sat", "sun"]}}),
]
EPOCH = dt.datetime(2025, 1, 1, tzinfo=UTC)

calendars = st.sampled_from(CALENDARS)
instants = st.integers(0, 3 * 365 * 24 * 60).map(lambda m: EPOCH + dt.timedelta(minutes=m))
durations = st.integers(0, 400 * 60).map(lambda m: dt.timedelta(minutes=m))


def reference_elapsed(cal, start, end):
    """Working time summed day by day over every interval: no shortcuts."""
    total, day = dt.timedelta(0), cal.local_date(start)
    while day <= cal.local_date(end):
        for a, b in cal.working_intervals(day):
            a, b = max(a, start), min(b, end)
            if b > a:
                total += b - a
        day += dt.timedelta(days=1)
    return total


def reference_add(cal, start, duration):
    """The earliest instant with ``duration`` of working time after ``start``, day by day."""
    if not duration:
        return start
    remaining, day = duration, cal.local_date(start)
    while True:
        for a, b in cal.working_intervals(day):
            a = max(a, start)
            if b > a:
                if remaining <= b - a:
                    return a + remaining
                remaining -= b - a
        day += dt.timedelta(days=1)


@settings(max_examples=300, deadline=None)
@given(calendars, instants, durations)
def test_round_trip_and_reference(cal, start, duration):
    end = cal.add_working(start, duration)
    assert end == reference_add(cal, start, duration)
    assert cal.elapsed(start, end) == duration
    if cal.is_working(start):
        assert cal.next_working_moment(start) == start


@settings(max_examples=200, deadline=None)
@given(calendars, instants, instants)
def test_elapsed_matches_the_reference(cal, a, b):
    start, end = min(a, b), max(a, b)
    assert cal.elapsed(start, end) == reference_elapsed(cal, start, end)
    assert cal.elapsed(end, start) == -cal.elapsed(start, end)


@settings(max_examples=200, deadline=None)
@given(calendars, instants, instants, durations, durations)
def test_add_is_monotonic(cal, a, b, d1, d2):
    (s1, s2), (e1, e2) = sorted([a, b]), sorted([d1, d2])
    assert cal.add_working(s1, e1) <= cal.add_working(s2, e1)
    assert cal.add_working(s1, e1) <= cal.add_working(s1, e2)
    assert cal.add_working(s1, e1) >= s1


@settings(max_examples=200, deadline=None)
@given(calendars, instants, st.integers(1, 120))
def test_working_days_land_on_the_nth_working_day(cal, start, n):
    result = cal.add_working_days(start, n)
    assert result >= cal.add_working_days(start, n - 1) if n > 1 else result > start
    s = cal.next_working_moment(start)
    day, count = cal.local_date(s), 0
    at_opening = s == cal.working_intervals(day)[0][0]
    wanted = n - 1 if at_opening else n
    while count < wanted:  # the plain way: walk day by day
        day += dt.timedelta(days=1)
        count += cal.is_working_day(day)
    intervals = cal.working_intervals(day)
    assert intervals[0][0] < result <= intervals[-1][1]
    if at_opening:
        assert result == intervals[-1][1]


def test_long_limits_are_fast():
    cal = BusinessCalendar.from_dict({"timezone": "Asia/Shanghai", "country": "CN",
                                      "working_hours": {d: LUNCH for d in ["mon", "tue", "wed", "thu", "fri"]}})
    start = dt.datetime(2026, 1, 5, 1, tzinfo=UTC)  # Mon 5 Jan 2026 09:00 in Shanghai
    began = time.perf_counter()
    by_days = cal.add_working_days(start, 250)
    by_hours = cal.add_working(start, dt.timedelta(hours=8 * 250))
    span = cal.elapsed(start, by_hours)
    took = time.perf_counter() - began
    assert took < 0.5, took
    # Starting at an opening, 250 working days end at the close of the 250th: the same
    # instant as 250 × 8 working hours.
    assert by_days == by_hours
    assert span == dt.timedelta(hours=8 * 250)
    assert by_hours == reference_add(cal, start, dt.timedelta(hours=8 * 250))
