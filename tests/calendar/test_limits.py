"""Limits as standards write them, the 24-hour clock, and due times with pauses."""

import datetime as dt
from zoneinfo import ZoneInfo

import pytest
from marshmallow import Schema, ValidationError

from servq.core.calendar import (BusinessCalendar, Calendar, Limit, LimitError, LimitField, WallClock,
                           due, parse_limit)

SH = ZoneInfo("Asia/Shanghai")
UTC = dt.timezone.utc
H = dt.timedelta(hours=1)


@pytest.fixture
def china():
    return BusinessCalendar.from_dict({
        "timezone": "Asia/Shanghai", "country": "CN",
        "working_hours": {d: ["09:00-12:00", "13:00-18:00"] for d in ["mon", "tue", "wed", "thu", "fri"]}})


@pytest.mark.parametrize("text, expected", [
    ("30m", Limit(30, "minute")),
    ("4h", Limit(4, "hour")),
    ("48h", Limit(48, "hour")),
    ("90 minutes", Limit(90, "minute")),
    ("2 hours", Limit(2, "hour")),
    ("2 HRS", Limit(2, "hour")),
    ("1d", Limit(1, "day")),
    ("3 days", Limit(3, "day")),
    ("5 working days", Limit(5, "day", True)),
    ("5  Business  Days", Limit(5, "day", True)),
    ("5 workdays", Limit(5, "day", True)),
    ("5wd", Limit(5, "day", True)),
    ("8 working hours", Limit(8, "hour", True)),
    ("8wh", Limit(8, "hour", True)),
    ("30 working minutes", Limit(30, "minute", True)),
    ("30分钟", Limit(30, "minute")),
    ("4小时", Limit(4, "hour")),
    ("4 个小时", Limit(4, "hour")),
    ("3天", Limit(3, "day")),
    ("5个工作日", Limit(5, "day", True)),
    ("5工作日", Limit(5, "day", True)),
    ("8个工作小时", Limit(8, "hour", True)),
])
def test_parse_limit(text, expected):
    assert parse_limit(text) == expected
    assert parse_limit(str(expected)) == expected  # the canonical text reads back


def test_canonical_text():
    assert [str(parse_limit(t)) for t in ["30 minutes", "5个工作日", "1 working day"]] == [
        "30m", "5 working days", "1 working day"]


@pytest.mark.parametrize("text, message", [
    ("soon", "Cannot read the limit 'soon'"),
    ("5 fortnights", "Cannot read the limit"),
    ("1.5h", "Cannot read the limit"),
    ("0m", "positive whole amount"),
    ("50000 days", "longer than ten years"),
    ("", "Cannot read the limit"),
])
def test_unreadable_limits(text, message):
    with pytest.raises(LimitError, match=message):
        parse_limit(text)
    with pytest.raises(LimitError, match="text such as"):
        parse_limit(5)


def test_limit_field_in_a_schema():
    class RuleSchema(Schema):
        limit = LimitField(required=True)

    assert RuleSchema().load({"limit": "5个工作日"}) == {"limit": Limit(5, "day", True)}
    assert RuleSchema().dump({"limit": Limit(30, "minute")}) == {"limit": "30m"}
    with pytest.raises(ValidationError) as exc:
        RuleSchema().load({"limit": "whenever"})
    assert "Cannot read the limit 'whenever'" in exc.value.messages["limit"][0]


def test_wall_clock_counts_every_minute():
    clock = WallClock()
    friday = dt.datetime(2026, 2, 13, 20, tzinfo=SH)
    assert clock.add(friday, "4h") == dt.datetime(2026, 2, 14, 0, tzinfo=SH)
    assert clock.add(friday, "5 working days") == dt.datetime(2026, 2, 18, 20, tzinfo=SH)
    assert clock.add(friday, dt.timedelta(minutes=30)) == dt.datetime(2026, 2, 13, 20, 30, tzinfo=SH)
    assert clock.elapsed(friday, dt.datetime(2026, 2, 13, 20, tzinfo=UTC)) == 8 * H  # 12:00Z → 20:00Z
    assert clock.elapsed_excluding(friday, clock.add(friday, "10h"),
                                   [(clock.add(friday, "1h"), clock.add(friday, "3h"))]) == 8 * H
    assert clock.is_working(friday) and clock.next_working_moment(friday) == friday


def test_both_calendars_follow_the_protocol(china):
    assert isinstance(china, Calendar) and isinstance(WallClock(), Calendar)


def test_due_of_the_friday_evening_complaint_before_spring_festival(china):
    # Worked by hand in test_arithmetic: filed Fri 13 Feb 2026 20:00, due Fri 27 Feb 18:00.
    filed = dt.datetime(2026, 2, 13, 20, tzinfo=SH)
    assert due(filed, "5 working days", china) == dt.datetime(2026, 2, 27, 18, tzinfo=SH)
    # The same complaint under a 24-hour "48h" standard ignores the holiday.
    assert due(filed, "48h", china) == dt.datetime(2026, 2, 15, 20, tzinfo=SH)
    # Given in UTC, the answer comes back in UTC: 27 Feb 18:00 +08:00 = 10:00Z.
    assert due(filed.astimezone(UTC), "5 working days", china) == dt.datetime(2026, 2, 27, 10, tzinfo=UTC)


def test_pausing_moves_the_due_time_by_the_paused_working_time(china):
    filed = dt.datetime(2026, 2, 13, 20, tzinfo=SH)
    # Waiting for the customer Tue 24 Feb 10:00-15:30: 10-12 and 13-15:30 = 4.5 working
    # hours. From Fri 27 Feb 18:00 they run on Sat 28 Feb, a moved working day:
    # 09-12 (3h) and 13:00-14:30 (1.5h) → due Sat 28 Feb 14:30.
    pause = (dt.datetime(2026, 2, 24, 10, tzinfo=SH), dt.datetime(2026, 2, 24, 15, 30, tzinfo=SH))
    moved = due(filed, "5 working days", china, [pause])
    assert moved == dt.datetime(2026, 2, 28, 14, 30, tzinfo=SH)
    # The clock, not counting the pause, shows the same 40 working hours at the new due time.
    assert china.elapsed_excluding(filed, moved, [pause]) == 40 * H
    # A pause after the due time changes nothing; a pause still running stops the clock.
    late = (dt.datetime(2026, 3, 2, 10, tzinfo=SH), dt.datetime(2026, 3, 2, 11, tzinfo=SH))
    assert due(filed, "5 working days", china, [late]) == dt.datetime(2026, 2, 27, 18, tzinfo=SH)
    assert due(filed, "5 working days", china, [(pause[0], None)]) is None


def test_two_pauses_add_up_and_wall_limits_pause_in_wall_time(china):
    start = dt.datetime(2026, 11, 23, 9, tzinfo=SH)  # a Monday
    pauses = [(dt.datetime(2026, 11, 23, 10, tzinfo=SH), dt.datetime(2026, 11, 23, 11, tzinfo=SH)),
              (dt.datetime(2026, 11, 23, 17, tzinfo=SH), dt.datetime(2026, 11, 24, 10, tzinfo=SH))]
    # 8 working hours: due Mon 18:00; pauses hold 1h + (17-18 and 09-10) 2h → Tue 12:00.
    assert due(start, "8 working hours", china, pauses) == dt.datetime(2026, 11, 24, 12, tzinfo=SH)
    # "8h" wall: due 17:00; first pause adds 1h → 18:00; the second (from 17:00) adds 17h → Tue 11:00.
    assert due(start, "8h", china, pauses) == dt.datetime(2026, 11, 24, 11, tzinfo=SH)
    assert due(start, "8h", None) == dt.datetime(2026, 11, 23, 17, tzinfo=SH)
