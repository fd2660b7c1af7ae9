"""Deadline items with calendar limits: "30m", "4h", "5 working days", "8 working hours".

A working limit is counted with the business calendar passed to ``evaluate``; a plain
limit is wall time unless the rule says ``clock = "business"``.
"""

import json
from datetime import datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest

from servq.core.calendar import WALL, BusinessCalendar, Limit, deadline_limit, parse_deadline_limit
from servq.core.scoring import (Outcome, StandardError, compile_standard, dump_standard,
                          evaluate, parse_standard)
from servq.core.scoring.rules import deadline

SH = ZoneInfo("Asia/Shanghai")
UTC = timezone.utc
HOURS = ["09:00-12:00", "13:00-18:00"]
CALENDAR = BusinessCalendar.from_dict({
    "timezone": "Asia/Shanghai",
    "working_hours": {day: HOURS for day in ("mon", "tue", "wed", "thu", "fri")}})
FRIDAY_EVENING = datetime(2026, 3, 6, 17, 0, tzinfo=SH)     # one working hour left that day
MONDAY_EVENING = datetime(2026, 3, 9, 17, 0, tzinfo=SH)


def standard(rule, **item):
    return parse_standard({
        "code": "t.deadlines", "version": 1, "title": {"en": "T", "zh": "测"},
        "applies_to": ["complaint"], "method": "weighted", "pass_mark": 50,
        "items": [{"code": "resolved", "title": {"en": "Resolved", "zh": "已处理"},
                   "dimension": "responsiveness", "rule": {"type": "deadline", "start": "received_at",
                                                           "stop": "resolved_at", **rule}, **item},
                  {"code": "polite", "title": {"en": "Polite", "zh": "礼貌"}, "dimension": "empathy",
                   "rule": {"type": "check"}}]})


@pytest.mark.parametrize("text, limit", [
    ("30m", Limit(30, "minute")),
    ("4h", Limit(4, "hour")),
    ("3 days", Limit(3, "day")),
    ("5 working days", Limit(5, "day", True)),
    ("8 working hours", Limit(8, "hour", True)),
    ("5个工作日", Limit(5, "day", True)),
    ("4小时", Limit(4, "hour")),
    ("1h30m", Limit(90, "minute")),      # compound durations still read
    ("2 weeks", Limit(14, "day")),
])
def test_limit_texts_load_as_calendar_limits_and_dump_back(text, limit):
    loaded = standard({"limit": text}).item("resolved").rule.params
    assert loaded["limit"] == limit
    assert loaded["clock"] == ("business" if limit.working else "wall")
    assert parse_deadline_limit(str(limit)) == limit


def test_clock_follows_the_limit_unless_the_rule_says_business():
    assert deadline_limit(standard({"limit": "4h"}).item("resolved").rule.params) == Limit(4, "hour")
    business = standard({"limit": "4h", "clock": "business"}).item("resolved").rule.params
    assert deadline_limit(business) == Limit(4, "hour", working=True)
    with pytest.raises(StandardError, match="counts working time"):
        standard({"limit": "5 working days", "clock": "wall"})
    for bad in ("soon", "90s", "0m", "50000 days"):
        with pytest.raises(StandardError, match="limit"):
            standard({"limit": bad})


def test_dump_standard_round_trips_the_limit_text():
    for text, clock in (("5个工作日", None), ("8 working hours", None), ("4h", "business"),
                        ("30m", None), ("1h30m", "wall")):
        rule = {"limit": text} if clock is None else {"limit": text, "clock": clock}
        original = standard(rule)
        document = dump_standard(original)
        dumped = document["items"][0]["rule"]
        assert dumped["limit"] == str(parse_deadline_limit(text))
        assert json.loads(json.dumps(document)) == document
        assert parse_standard(document) == original


def test_five_working_days_count_with_the_tenants_calendar():
    compiled = compile_standard(standard({"limit": "5 working days"}))
    # Filed Friday 17:00: day one is that Friday's last hour, due Friday next week at
    # the same working position (17:00).
    due = datetime(2026, 3, 13, 17, 0, tzinfo=SH)
    on_time = evaluate(compiled, {"received_at": FRIDAY_EVENING, "resolved_at": due, "polite": True},
                       due, CALENDAR)
    item = on_time.item("resolved")
    assert item.outcome is Outcome.PASS
    assert item.evidence["due"] == due and item.evidence["limit"] == "5 working days"
    assert item.evidence["business"] is True
    assert item.evidence["elapsed"] == timedelta(hours=40)   # working time, not 7 days
    assert (item.evidence["start"], item.evidence["stop"]) == (FRIDAY_EVENING, due)

    late = evaluate(compiled, {"received_at": FRIDAY_EVENING, "polite": True,
                               "resolved_at": due + timedelta(minutes=1)}, due, CALENDAR)
    assert late.item("resolved").outcome is Outcome.FAIL and late.percent == 50

    # Over the weekend the clock does not move: pending on Monday, breached after the due time.
    waiting = {"received_at": FRIDAY_EVENING, "resolved_at": None, "polite": True}
    assert evaluate(compiled, waiting, due, CALENDAR).item("resolved").outcome is Outcome.PENDING
    breached = evaluate(compiled, waiting, due + timedelta(seconds=1), CALENDAR)
    assert breached.item("resolved").outcome is Outcome.BREACHED
    assert breached.item("resolved").evidence["elapsed"] is None

    # Without a tenant calendar a working day is 24 hours of wall time.
    wall = evaluate(compiled, waiting, FRIDAY_EVENING + timedelta(days=5, seconds=1))
    assert wall.item("resolved").outcome is Outcome.BREACHED
    assert wall.item("resolved").evidence["business"] is False


def test_eight_working_hours_and_plain_hours_on_a_business_clock():
    working = compile_standard(standard({"limit": "8 working hours"}))
    tuesday_five = datetime(2026, 3, 10, 17, 0, tzinfo=SH)   # 1 h Monday + 3 h + 4 h Tuesday
    values = {"received_at": MONDAY_EVENING, "resolved_at": None}
    result = evaluate(working, values, MONDAY_EVENING, CALENDAR)
    assert result.item("resolved").evidence["due"] == tuesday_five
    same_as_business_4h = compile_standard(standard({"limit": "8h", "clock": "business"}))
    assert evaluate(same_as_business_4h, values, MONDAY_EVENING, CALENDAR).item(
        "resolved").evidence["due"] == tuesday_five

    # A plain limit ignores the calendar: 8 hours of wall time, due at 01:00.
    plain = compile_standard(standard({"limit": "8h"}))
    wall = evaluate(plain, values, MONDAY_EVENING, CALENDAR).item("resolved")
    assert wall.evidence["due"] == MONDAY_EVENING + timedelta(hours=8)
    assert wall.evidence["business"] is False


def test_deadline_rule_takes_a_limit_its_text_or_a_duration():
    stop = MONDAY_EVENING + timedelta(hours=41)                  # Wednesday 10:00
    by_text = deadline(MONDAY_EVENING, stop, now=stop, limit="8 working hours", calendar=CALENDAR)
    by_limit = deadline(MONDAY_EVENING, stop, now=stop, limit=Limit(8, "hour", True), calendar=CALENDAR)
    assert by_text == by_limit and by_text.outcome is Outcome.FAIL
    assert by_text.evidence["elapsed"] == timedelta(hours=1 + 8 + 1)   # Mon 17-18, Tue, Wed 9-10
    # a plain limit is wall time even when a calendar is given
    plain = deadline(MONDAY_EVENING, stop, now=stop, limit="48h", calendar=CALENDAR)
    assert plain.outcome is Outcome.PASS and plain.evidence["elapsed"] == timedelta(hours=41)
    legacy = deadline(MONDAY_EVENING, stop, now=stop, limit=timedelta(hours=48))
    assert legacy.outcome is Outcome.PASS and legacy.evidence["limit"] == "2d"
    assert WALL.add(MONDAY_EVENING, Limit(2, "day", True)) == MONDAY_EVENING + timedelta(days=2)


def test_evaluation_json_shows_the_limit_as_written_and_times_in_seconds():
    compiled = compile_standard(standard({"limit": "5个工作日"}))
    values = {"received_at": FRIDAY_EVENING.isoformat(),
              "resolved_at": (FRIDAY_EVENING + timedelta(days=3)).isoformat(), "polite": False}
    data = evaluate(compiled, values, FRIDAY_EVENING + timedelta(days=3), CALENDAR).as_dict()
    evidence = data["items"][0]["evidence"]
    assert evidence["limit"] == "5 working days" and evidence["business"] is True
    assert evidence["elapsed"] == (1 + 7) * 3600    # Friday's last hour, Monday to 17:00
    assert evidence["due"] == "2026-03-13T17:00:00+08:00"
    json.dumps(data)


def test_a_breached_critical_deadline_fails_the_record_a_pending_one_does_not():
    compiled = compile_standard(standard({"limit": "30m"}, critical=True))
    waiting = {"received_at": MONDAY_EVENING, "resolved_at": None, "polite": True}
    pending = evaluate(compiled, waiting, MONDAY_EVENING + timedelta(minutes=30), CALENDAR)
    assert pending.failed_critical == () and pending.percent == 100 and not pending.complete
    breached = evaluate(compiled, waiting, MONDAY_EVENING + timedelta(minutes=31), CALENDAR)
    assert breached.failed_critical == ("resolved",)
    assert (breached.percent, breached.passed, breached.complete) == (0, False, True)
