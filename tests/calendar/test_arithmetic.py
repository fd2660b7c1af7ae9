"""Working-time arithmetic with hand-computed expectations."""

import datetime as dt
from zoneinfo import ZoneInfo

import pytest

from servq.core.calendar import BusinessCalendar, NoWorkingTime

SH = ZoneInfo("Asia/Shanghai")
BER = ZoneInfo("Europe/Berlin")
NY = ZoneInfo("America/New_York")
UTC = dt.timezone.utc
LUNCH = ["09:00-12:00", "13:00-18:00"]
WEEKDAYS = ["mon", "tue", "wed", "thu", "fri"]
H = dt.timedelta(hours=1)


def calendar(tz, country=None, **extra):
    data = {"timezone": tz, "working_hours": {d: LUNCH for d in WEEKDAYS}, **extra}
    if country:
        data["country"] = country
    return BusinessCalendar.from_dict(data)


@pytest.fixture
def berlin():
    return calendar("Europe/Berlin")


@pytest.fixture
def china():
    return calendar("Asia/Shanghai", "CN")


def at(tz, *args):
    return dt.datetime(*args, tzinfo=tz)


# ----- weekends and lunch breaks ---------------------------------------------------------

def test_weekend_is_skipped(berlin):
    # Fri 20 Nov 2026 16:00: 16-18 is 2h, Mon 09:00-11:00 the other 2h.
    assert berlin.add_working(at(BER, 2026, 11, 20, 16), 4 * H) == at(BER, 2026, 11, 23, 11)
    # Fri 17:00 → Mon 10:00: one hour on Friday, one on Monday.
    assert berlin.elapsed(at(BER, 2026, 11, 20, 17), at(BER, 2026, 11, 23, 10)) == 2 * H


def test_lunch_break(berlin):
    mon = (2026, 11, 23)
    assert berlin.add_working(at(BER, *mon, 11), 2 * H) == at(BER, *mon, 14)  # 11-12, 13-14
    assert berlin.add_working(at(BER, *mon, 12, 30), H) == at(BER, *mon, 14)  # starts at 13:00
    assert berlin.add_working(at(BER, *mon, 11), H) == at(BER, *mon, 12)  # earliest: not 13:00
    assert berlin.elapsed(at(BER, *mon, 11), at(BER, *mon, 14)) == 2 * H
    assert berlin.is_working(at(BER, *mon, 11, 59))
    assert not berlin.is_working(at(BER, *mon, 12))  # spans are half open
    assert berlin.is_working(at(BER, *mon, 13))
    assert berlin.next_working_moment(at(BER, *mon, 12, 15)) == at(BER, *mon, 13)
    assert berlin.next_working_moment(at(BER, *mon, 10)) == at(BER, *mon, 10)


# ----- limits that start outside working hours -------------------------------------------

def test_friday_evening_plus_eight_working_hours_ends_monday_at_close(berlin):
    # Monday 09-12 (3h) + 13-18 (5h) = 8h: due Monday 18:00, not Tuesday 09:00.
    assert berlin.add(at(BER, 2026, 11, 20, 20), "8 working hours") == at(BER, 2026, 11, 23, 18)


def test_saturday_and_early_morning_starts(berlin):
    assert berlin.add_working(at(BER, 2026, 11, 21, 10), dt.timedelta(minutes=30)) == at(BER, 2026, 11, 23, 9, 30)
    assert berlin.add_working(at(BER, 2026, 11, 23, 7), H) == at(BER, 2026, 11, 23, 10)
    assert berlin.next_working_moment(at(BER, 2026, 11, 21, 10)) == at(BER, 2026, 11, 23, 9)


def test_wall_clock_limits_ignore_the_calendar(berlin):
    friday_evening = at(BER, 2026, 11, 20, 20)
    assert berlin.add(friday_evening, "4h") == at(BER, 2026, 11, 21, 0)
    assert berlin.add(friday_evening, "4 working hours") == at(BER, 2026, 11, 23, 14)  # 9-12, 13-14
    assert berlin.add(friday_evening, dt.timedelta(hours=4)) == at(BER, 2026, 11, 23, 14)


# ----- public holidays and moved working days (CN 2026) ----------------------------------

def test_national_day_week_is_skipped(china):
    # Wed 30 Sep 15:00: 15-18 (3h); 1-7 Oct off; Thu 8 Oct 09-12 (3h), 13-15 (2h).
    assert china.add_working(at(SH, 2026, 9, 30, 15), 8 * H) == at(SH, 2026, 10, 8, 15)
    assert china.elapsed(at(SH, 2026, 9, 30, 18), at(SH, 2026, 10, 8, 9)) == dt.timedelta(0)


def test_moved_working_saturday(china):
    # Sat 10 Oct 2026 is a working day (moved from 7 Oct): Fri 17-18, Sat 09-10.
    assert china.add_working(at(SH, 2026, 10, 9, 17), 2 * H) == at(SH, 2026, 10, 10, 10)
    assert china.is_working(at(SH, 2026, 10, 10, 9, 30))


def test_tenant_extra_working_saturday():
    cal = calendar("Europe/Berlin", extra_working_days=["2026-11-28"])
    # Fri 27 Nov 17:00: 17-18 on Friday, Saturday 28 works Monday's hours: 09-10.
    assert cal.add_working(at(BER, 2026, 11, 27, 17), 2 * H) == at(BER, 2026, 11, 28, 10)
    # An extra holiday on Monday 30 Nov: Tuesday instead.
    cal = calendar("Europe/Berlin", extra_holidays=["2026-11-30"])
    assert cal.add_working(at(BER, 2026, 11, 27, 17), 2 * H) == at(BER, 2026, 12, 1, 10)


# ----- working days ----------------------------------------------------------------------

def test_friday_evening_before_spring_festival_five_working_days(china):
    # Filed Fri 13 Feb 2026 20:00. Working days after it: Sat 14 (moved working day) = 1;
    # Sun 15 off; Mon 16 - Fri 20 Spring Festival; Sat 21, Sun 22 weekend; Mon 23 day off
    # (moved from Sat 28); Tue 24 = 2, Wed 25 = 3, Thu 26 = 4, Fri 27 = 5 → Fri 27 at 18:00.
    filed = at(SH, 2026, 2, 13, 20)
    assert china.add(filed, "5 working days") == at(SH, 2026, 2, 27, 18)
    assert china.add(filed, "5个工作日") == at(SH, 2026, 2, 27, 18)
    assert china.elapsed(filed, at(SH, 2026, 2, 27, 18)) == 5 * 8 * H


def test_working_days_from_inside_a_day_keep_the_position(china):
    # Wed 30 Sep 15:00: Thu 8 Oct = 1, Fri 9 = 2, Sat 10 (moved) = 3, Mon 12 = 4, Tue 13 = 5.
    assert china.add_working_days(at(SH, 2026, 9, 30, 15), 5) == at(SH, 2026, 10, 13, 15)
    # Fri 18 Sep 10:00: Sun 20 (moved) = 1, Mon 21 .. Thu 24 = 2..5 → Thu 24 10:00.
    assert china.add_working_days(at(SH, 2026, 9, 18, 10), 5) == at(SH, 2026, 9, 24, 10)


def test_working_days_from_the_opening_end_at_a_close(berlin):
    # Mon 23 Nov 09:00: Monday is day 1, Friday 27 day 5 → Friday 18:00.
    assert berlin.add_working_days(at(BER, 2026, 11, 23, 9), 5) == at(BER, 2026, 11, 27, 18)
    assert berlin.add_working_days(at(BER, 2026, 11, 23, 9), 1) == at(BER, 2026, 11, 23, 18)
    # Filed during lunch (3 working hours into Monday): 3 hours into next Monday = 12:00.
    assert berlin.add_working_days(at(BER, 2026, 11, 23, 12, 30), 5) == at(BER, 2026, 11, 30, 12)
    assert berlin.add_working_days(at(BER, 2026, 11, 23, 12, 30), 0) == at(BER, 2026, 11, 23, 12, 30)


def test_working_day_onto_a_shorter_day_is_capped_at_its_close():
    cal = BusinessCalendar.from_dict({"timezone": "Europe/Berlin", "working_hours": {
        "thu": LUNCH, "fri": ["09:00-13:00"]}})
    # Thu 16:00 is 6 working hours into Thursday; Friday has only 4 → Friday 13:00.
    assert cal.add_working_days(at(BER, 2026, 11, 26, 16), 1) == at(BER, 2026, 11, 27, 13)


# ----- daylight saving time -------------------------------------------------------------

def test_span_across_spring_forward_and_fall_back():
    cal = BusinessCalendar.from_dict({"timezone": "America/New_York", "working_hours": {
        "sun": ["00:00-06:00"], "mon": ["09:00-17:00"]}})
    # Sun 8 Mar 2026: clocks jump 02:00 → 03:00, so 00:00-06:00 holds 5 real hours.
    spring = (at(NY, 2026, 3, 8, 0), at(NY, 2026, 3, 8, 6))
    assert cal.elapsed(*spring) == 5 * H
    assert cal.add_working(spring[0], 5 * H) == spring[1]
    assert cal.add_working(spring[0], 5 * H).astimezone(UTC) == dt.datetime(2026, 3, 8, 10, tzinfo=UTC)
    # Sun 1 Nov 2026: 02:00 → 01:00, so the same span holds 7 real hours.
    assert cal.elapsed(at(NY, 2026, 11, 1, 0), at(NY, 2026, 11, 1, 6)) == 7 * H


def test_weekend_across_spring_forward_in_utc():
    cal = calendar("America/New_York")
    # Fri 6 Mar 16:00 EST = 21:00Z; +3h: Fri 16-18 EST, then Mon 9 Mar 09-10 EDT, and
    # 10:00 EDT is 14:00Z (the offset changed from -5 to -4 over the weekend).
    start = dt.datetime(2026, 3, 6, 21, tzinfo=UTC)
    result = cal.add_working(start, 3 * H)
    assert result == dt.datetime(2026, 3, 9, 14, tzinfo=UTC)
    assert cal.elapsed(start, result) == 3 * H
    assert result.tzinfo is UTC  # results come back in the input's zone
    assert cal.add_working(at(NY, 2026, 3, 6, 16), 3 * H) == at(NY, 2026, 3, 9, 10)


def test_round_the_clock_calendar_across_berlin_spring_forward():
    cal = BusinessCalendar.from_dict({"timezone": "Europe/Berlin", "working_hours": {
        d: ["00:00-24:00"] for d in ["mon", "tue", "wed", "thu", "fri", "sat", "sun"]}})
    # Sun 29 Mar 2026 has 23 hours: Sat 00:00 → Mon 00:00 is 47 hours.
    assert cal.elapsed(at(BER, 2026, 3, 28), at(BER, 2026, 3, 30)) == 47 * H
    assert cal.add_working(at(BER, 2026, 3, 28), 47 * H) == at(BER, 2026, 3, 30)
    # Weeks skipped whole, except the one with the clock change: 5 weeks of 168h minus 1.
    assert cal.elapsed(at(BER, 2026, 3, 2), at(BER, 2026, 4, 6)) == (5 * 168 - 1) * H


def test_wall_clock_day_is_24_real_hours_across_dst(berlin):
    assert berlin.add(at(NY, 2026, 3, 7, 12), "24h") == at(NY, 2026, 3, 8, 13)
    assert berlin.add(at(NY, 2026, 3, 7, 12), "1d") == at(NY, 2026, 3, 8, 13)


# ----- pauses, direction, errors ----------------------------------------------------------

def test_elapsed_excluding_pauses(berlin):
    mon = (2026, 11, 23)
    pauses = [(at(BER, *mon, 10), at(BER, *mon, 14)),  # 10-12 and 13-14: 3h
              (at(BER, *mon, 11), at(BER, *mon, 13, 30)),  # inside the first: counted once
              (at(BER, *mon, 17), None)]  # still paused: Mon 17-18 and Tue 09-10, 2h
    # Mon 09:00 → Tue 10:00 is 3 + 5 + 1 = 9h of working time; 9 - 3 - 2 = 4h.
    assert berlin.elapsed_excluding(at(BER, *mon, 9), at(BER, 2026, 11, 24, 10), pauses) == 4 * H


def test_elapsed_is_antisymmetric(berlin):
    a, b = at(BER, 2026, 11, 20, 17), at(BER, 2026, 11, 23, 10)
    assert berlin.elapsed(b, a) == -2 * H


def test_naive_datetimes_are_refused(berlin):
    with pytest.raises(ValueError, match="timezone-aware"):
        berlin.add_working(dt.datetime(2026, 11, 23, 9), H)
    with pytest.raises(ValueError, match="negative"):
        berlin.add_working(at(BER, 2026, 11, 23, 9), -H)


def test_a_calendar_without_any_working_day_says_so():
    mondays = [dt.date(2026, 11, 2) + dt.timedelta(weeks=w) for w in range(1100)]
    cal = BusinessCalendar.from_dict({"timezone": "UTC", "working_hours": {"mon": ["09:00-10:00"]},
                                      "extra_holidays": [d.isoformat() for d in mondays[1:]]})
    assert cal.add_working(at(UTC, 2026, 11, 2, 9, 30), dt.timedelta(minutes=30)) == at(UTC, 2026, 11, 2, 10)
    with pytest.raises(NoWorkingTime):
        cal.add_working(at(UTC, 2026, 11, 2, 9, 30), H)


def test_working_days_across_spring_forward_and_easter_from_a_saturday():
    # Berlin with its public holidays. Saturday 28 March 2026, the clocks go forward on
    # Sunday: counting starts Monday 30 March 09:00 CEST. Good Friday (3 April) and Easter
    # Monday (6 April) are holidays: 30, 31 March, 1, 2 and 7 April → Tuesday 7 April 18:00.
    berlin = calendar("Europe/Berlin", "DE")
    due = berlin.add(at(BER, 2026, 3, 28, 10), "5 working days")
    assert due == at(BER, 2026, 4, 7, 18)
    assert due.utcoffset() == dt.timedelta(hours=2)  # the zone given: summer time by then
    assert due.astimezone(UTC) == dt.datetime(2026, 4, 7, 16, tzinfo=UTC)
    # 5 working days of 8 hours each, none counted over the holidays or the weekend.
    assert berlin.elapsed(berlin.next_working_moment(at(BER, 2026, 3, 28, 10)), due) == 40 * H
    # 4 working hours from the Thursday before Easter, 16:00: 16-18, then Tuesday 09-11.
    assert berlin.add(at(BER, 2026, 4, 2, 16), "4 working hours") == at(BER, 2026, 4, 7, 11)


def test_limit_starting_in_the_lunch_break_on_a_moved_working_day(china):
    # Saturday 14 February 2026 is a working day in China; 12:30 is lunch.
    assert china.add(at(SH, 2026, 2, 14, 12, 30), "2 working hours") == at(SH, 2026, 2, 14, 15)
