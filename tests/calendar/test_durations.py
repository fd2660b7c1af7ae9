"""Durations written as text."""

from datetime import timedelta

import pytest
from hypothesis import given, settings, strategies as st

from servq.core.calendar.durations import format_duration, parse_duration


@pytest.mark.parametrize("text, expected", [
    ("24h", timedelta(hours=24)),
    ("3 days", timedelta(days=3)),
    ("30 minutes", timedelta(minutes=30)),
    ("1h30m", timedelta(hours=1, minutes=30)),
    ("1 day 4 hours", timedelta(days=1, hours=4)),
    ("0.5h", timedelta(minutes=30)),
    ("2 weeks", timedelta(weeks=2)),
    ("4小时", timedelta(hours=4)),
    ("5天", timedelta(days=5)),
    ("30 分钟", timedelta(minutes=30)),
])
def test_parse(text, expected):
    assert parse_duration(text) == expected


@pytest.mark.parametrize("text", ["", "soon", "24", "h", "0h", "3 fortnights", "-1h", "1h x"])
def test_bad_durations_are_rejected(text):
    with pytest.raises(ValueError):
        parse_duration(text)


def test_canonical_form():
    assert format_duration(timedelta(days=1, hours=4)) == "1d4h"
    assert format_duration(timedelta(minutes=90)) == "1h30m"
    with pytest.raises(ValueError):
        format_duration(timedelta(0))


@settings(deadline=None)  # a loaded CI machine must not fail a property
@given(st.integers(min_value=1, max_value=10**8))
def test_canonical_form_parses_back(seconds):
    duration = timedelta(seconds=seconds)
    assert parse_duration(format_duration(duration)) == duration
