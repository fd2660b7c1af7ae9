"""The calendar's input validation and how a day's hours are decided."""

import datetime as dt

import pytest
from marshmallow import ValidationError

from servq.core.calendar import BusinessCalendar

LUNCH = ["09:00-12:00", "13:00-18:00"]
WEEKDAYS = ["mon", "tue", "wed", "thu", "fri"]


def cn(**extra):
    return BusinessCalendar.from_dict({
        "timezone": "Asia/Shanghai", "country": "CN",
        "working_hours": {d: LUNCH for d in WEEKDAYS}, **extra})


def errors_of(data):
    with pytest.raises(ValidationError) as exc:
        BusinessCalendar.from_dict(data)
    return exc.value.messages


def test_defaults_are_monday_to_friday_nine_to_six_with_a_lunch_break():
    cal = BusinessCalendar.from_dict({"timezone": "Europe/Berlin"})
    assert cal.hours_on(dt.date(2026, 11, 23)) == ((540, 720), (780, 1080))  # a Monday
    assert cal.hours_on(dt.date(2026, 11, 21)) == ()  # a Saturday
    assert cal.week_total == dt.timedelta(hours=40)
    assert cal.week_working_days == 5


def test_bad_time_zone_is_named():
    assert errors_of({"timezone": "Mars/Olympus"}) == {
        "timezone": ["Unknown time zone 'Mars/Olympus' (use an IANA name such as 'Asia/Shanghai')."]}


def test_missing_time_zone():
    assert "timezone" in errors_of({})


def test_overlapping_spans():
    messages = errors_of({"timezone": "UTC", "working_hours": {"mon": ["09:00-12:00", "11:00-13:00"]}})
    assert messages == {"working_hours": {"mon": ["Spans '09:00-12:00' and '11:00-13:00' overlap on mon."]}}


def test_end_before_start():
    messages = errors_of({"timezone": "UTC", "working_hours": {"tue": ["18:00-09:00"]}})
    assert "ends before it starts" in messages["working_hours"]["tue"][0]


@pytest.mark.parametrize("span", ["9-12", "25:00-26:00", "09:61-10:00", "24:30-24:45"])
def test_malformed_span(span):
    messages = errors_of({"timezone": "UTC", "working_hours": {"mon": [span]}})
    assert span in messages["working_hours"]["mon"][0]


def test_unknown_weekday():
    messages = errors_of({"timezone": "UTC", "working_hours": {"funday": ["09:00-17:00"]}})
    assert messages == {"working_hours": {"funday": [
        "Unknown weekday 'funday'; use mon, tue, wed, thu, fri, sat, sun."]}}


def test_no_working_hours_at_all():
    assert errors_of({"timezone": "UTC", "working_hours": {"mon": []}}) == {
        "working_hours": ["At least one weekday needs working hours."]}


def test_unknown_country_and_subdivision():
    assert errors_of({"timezone": "UTC", "country": "XX"}) == {
        "country": ["Unknown country code 'XX' for public holidays (e.g. CN, US, DE)."]}
    assert "Unknown subdivision 'ZZ' of US" in errors_of(
        {"timezone": "UTC", "country": "US", "subdivision": "ZZ"})["subdivision"][0]
    assert errors_of({"timezone": "UTC", "subdivision": "NY"}) == {
        "subdivision": ["A subdivision needs a country."]}


def test_day_cannot_be_both_holiday_and_working_day():
    messages = errors_of({"timezone": "UTC", "extra_holidays": ["2026-12-26"],
                          "extra_working_days": ["2026-12-26"]})
    assert messages == {"extra_working_days": [
        "2026-12-26 cannot be both an extra holiday and an extra working day."]}


def test_unknown_keys_are_rejected():
    assert errors_of({"timezone": "UTC", "hours": {}}) == {"hours": ["Unknown field."]}


def test_touching_spans_merge_and_full_names_are_accepted():
    cal = BusinessCalendar.from_dict({"timezone": "UTC", "working_hours": {
        "Monday": ["12:00-13:00", "09:00-12:00"], "sun": ["00:00-24:00"]}})
    assert cal.working_hours[0] == ((540, 780),)
    assert cal.working_hours[6] == ((0, 1440),)


def test_round_trip_through_dict():
    cal = cn(extra_holidays=["2026-12-24"], extra_working_days=["2026-12-26"],
             makeup_day_hours=["10:00-16:00"])
    again = BusinessCalendar.from_dict(cal.to_dict())
    assert again == cal
    assert hash(again) == hash(cal)


def test_cn_2026_public_holidays_and_moved_working_days_from_the_library():
    cal = cn()
    # National Day week 2026: Thu 1 Oct to Wed 7 Oct off (holidays returns 1, 2, 3, 5, 6, 7
    # and the 4th is a Sunday); Sun 20 Sep and Sat 10 Oct are moved working days.
    for day in range(1, 8):
        assert cal.hours_on(dt.date(2026, 10, day)) == (), day
    assert cal.holiday_name(dt.date(2026, 10, 1)) == "National Day"
    assert cal.hours_on(dt.date(2026, 9, 20)) == ((540, 720), (780, 1080))
    assert cal.hours_on(dt.date(2026, 10, 10)) == ((540, 720), (780, 1080))
    assert cal.hours_on(dt.date(2026, 10, 11)) == ()  # an ordinary Sunday
    assert cal.hours_on(dt.date(2026, 10, 8)) == ((540, 720), (780, 1080))


def test_tenant_overrides_win_over_the_library():
    cal = cn(extra_working_days=["2026-10-02"], extra_holidays=["2026-10-10", "2026-12-24"],
             makeup_day_hours=["10:00-16:00"])
    assert cal.hours_on(dt.date(2026, 10, 2)) == ((600, 960),)  # a holiday made working
    assert cal.hours_on(dt.date(2026, 10, 10)) == ()  # the library's moved day cancelled
    assert cal.hours_on(dt.date(2026, 12, 24)) == ()
    assert cal.hours_on(dt.date(2026, 9, 20)) == ((600, 960),)  # library moved day: makeup hours


def test_moved_saturday_works_monday_hours_by_default():
    cal = BusinessCalendar.from_dict({"timezone": "Europe/Berlin", "working_hours": {
        "mon": ["08:00-16:00"], "tue": ["10:00-12:00"]}, "extra_working_days": ["2026-11-28", "2026-12-01"]})
    assert cal.hours_on(dt.date(2026, 11, 28)) == ((480, 960),)  # Saturday → Monday's hours
    assert cal.hours_on(dt.date(2026, 12, 1)) == ((600, 720),)  # a Tuesday keeps its own


def test_span_inside_the_spring_forward_gap_has_no_working_time():
    cal = BusinessCalendar.from_dict({"timezone": "America/New_York",
                                      "working_hours": {"sun": ["02:00-03:00"], "mon": ["09:00-17:00"]}})
    assert cal.working_intervals(dt.date(2026, 3, 8)) == ()
    assert not cal.is_working_day(dt.date(2026, 3, 8))
    assert cal.is_working_day(dt.date(2026, 3, 15))


def test_day_note_says_why_a_day_departs_from_its_weekday():
    cal = BusinessCalendar.from_dict({"timezone": "Asia/Shanghai", "country": "CN",
                                      "extra_holidays": ["2026-02-27"], "extra_working_days": ["2026-03-07"]})
    assert cal.day_note(dt.date(2026, 2, 13)) is None                   # an ordinary Friday
    assert cal.day_note(dt.date(2026, 2, 14)) == "moved working day"    # 调休 Saturday
    assert cal.day_note(dt.date(2026, 2, 17)) == "public holiday"
    assert cal.holiday_name(dt.date(2026, 2, 17))
    assert cal.day_note(dt.date(2026, 2, 27)) == "extra holiday"
    assert cal.day_note(dt.date(2026, 3, 7)) == "extra working day"
