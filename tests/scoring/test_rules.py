"""Core's rule types as pure functions."""

from datetime import datetime, timedelta, timezone
from decimal import Decimal
from fractions import Fraction

import pytest

from servq.core.calendar import Calendar, WallClock
from servq.core.scoring.rules import (Outcome, PhraseMatcher, RuleInputError, check, deadline, deduction,
                                measure, phrases, ratio)

UTC = timezone.utc
T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


# check -------------------------------------------------------------------------------

@pytest.mark.parametrize("value, outcome", [
    (True, Outcome.PASS), (False, Outcome.FAIL), (None, Outcome.NA),
    ("pass", Outcome.PASS), (" FAIL ", Outcome.FAIL), ("na", Outcome.NA), ("n/a", Outcome.NA),
])
def test_check(value, outcome):
    assert check(value).outcome is outcome


@pytest.mark.parametrize("value", [1, 0, "yes", 2.5, [True]])
def test_check_rejects_other_answers(value):
    with pytest.raises(RuleInputError):
        check(value)


# measure -----------------------------------------------------------------------------

def test_road_lighting_at_least_99_percent():
    assert measure(99.0, min=99).outcome is Outcome.PASS
    assert measure(100, min=99, max=100).outcome is Outcome.PASS
    result = measure(98.9, min=99)
    assert result.outcome is Outcome.FAIL
    assert result.evidence == {"value": 98.9, "min": 99, "max": None}


def test_measure_max_only_and_target_with_tolerance():
    assert measure(30, max=30).outcome is Outcome.PASS
    assert measure(31, max=30).outcome is Outcome.FAIL
    assert measure(150, target=180, tolerance=30).outcome is Outcome.PASS
    assert measure(211, target=180, tolerance=30).outcome is Outcome.FAIL
    assert measure(180, target=180).outcome is Outcome.PASS
    assert measure(180.01, target=180).outcome is Outcome.FAIL


def test_measure_compares_exact_ratios_not_rounded_ones():
    # Road lighting 2,473 of 2,498 is 98.9992 %: it rounds to 99.00 but is below 99 %.
    assert measure(ratio(2473, 2498, percent=True), min=99).outcome is Outcome.FAIL
    assert measure(ratio(2475, 2500, percent=True), min=99).outcome is Outcome.PASS  # 99 % exactly
    assert measure(ratio(2474, 2498, percent=True), min=99).outcome is Outcome.PASS  # 99.04 %
    # Fire water 39,999 of 40,000 is 99.9975 %, not 100 %.
    result = measure(ratio(39999, 40000, percent=True), min=100)
    assert result.outcome is Outcome.FAIL
    assert result.evidence == {"value": 99.9975, "min": 100, "max": None}
    assert measure(ratio(40000, 40000, percent=True), min=100).outcome is Outcome.PASS
    # One part in ten billion below the mark still fails; the ratio is never rounded.
    assert measure(ratio(9_999_999_999, 10_000_000_000), min=1).outcome is Outcome.FAIL
    assert ratio(1, 3) == Fraction(1, 3) and ratio(1, 3, percent=True) == Fraction(100, 3)
    assert ratio(None, 3) is None and ratio(1, None) is None and ratio(0, 0) is None


def test_measure_compares_decimals_as_written():
    # A number is the decimal it was written as: 0.3 is the lower end of 0.4 ± 0.1 (in
    # binary floating point 0.4 - 0.1 is 0.30000000000000004), 0.8 the upper end of
    # 0.1 ± 0.7 (0.1 + 0.7 is 0.7999999999999999).
    result = measure(0.3, target=0.4, tolerance=0.1)
    assert result.outcome is Outcome.PASS and result.evidence == {"value": 0.3, "min": 0.3, "max": 0.5}
    assert measure(0.8, target=0.1, tolerance=0.7).outcome is Outcome.PASS
    assert measure(0.30000000000000004, target=0.4, tolerance=0.1).outcome is Outcome.PASS
    assert measure(0.29999999999999993, target=0.4, tolerance=0.1).outcome is Outcome.FAIL
    assert measure(57.3, min=57.3, max=57.3).outcome is Outcome.PASS
    assert measure(Decimal("98.9992"), min=99).outcome is Outcome.FAIL
    assert measure(Decimal("99.00"), min=99).outcome is Outcome.PASS
    assert measure(Fraction(573, 10), max=57.3).outcome is Outcome.PASS
    assert measure(Fraction(573, 10) + Fraction(1, 10**12), max=57.3).outcome is Outcome.FAIL
    with pytest.raises(RuleInputError):
        ratio("1", 2)
    with pytest.raises(RuleInputError):
        measure(Decimal("NaN"), min=1)


def test_measure_missing_value_is_na():
    assert measure(None, min=1).outcome is Outcome.NA


@pytest.mark.parametrize("value", [True, "99", float("nan"), [1]])
def test_measure_rejects_non_numbers(value):
    with pytest.raises(RuleInputError):
        measure(value, min=1)


# deadline ----------------------------------------------------------------------------

def test_deadline_met_in_time_and_on_the_limit():
    result = deadline(T0, T0 + timedelta(hours=4), now=T0, limit=timedelta(hours=4))
    assert result.outcome is Outcome.PASS
    assert result.evidence["elapsed"] == timedelta(hours=4)
    assert result.evidence["due"] == T0 + timedelta(hours=4)


def test_deadline_met_late_fails():
    result = deadline(T0, T0 + timedelta(hours=4, seconds=1), now=T0 + timedelta(days=9),
                      limit=timedelta(hours=4))
    assert result.outcome is Outcome.FAIL


def test_deadline_not_yet_due_is_pending_and_overdue_is_breached():
    limit = timedelta(minutes=30)
    assert deadline(T0, None, now=T0 + limit, limit=limit).outcome is Outcome.PENDING
    breached = deadline(T0, None, now=T0 + limit + timedelta(seconds=1), limit=limit)
    assert breached.outcome is Outcome.BREACHED
    assert breached.evidence["stop"] is None


def test_deadline_without_start_is_na():
    assert deadline(None, None, now=T0, limit=timedelta(hours=1)).outcome is Outcome.NA


def test_deadline_reads_iso_texts_and_rejects_naive_times():
    result = deadline("2026-03-02T09:00:00+08:00", "2026-03-02T10:00:00+08:00", now=T0,
                      limit=timedelta(hours=1))
    assert result.outcome is Outcome.PASS
    with pytest.raises(RuleInputError, match="time zone"):
        deadline(datetime(2026, 3, 2, 9), None, now=T0, limit=timedelta(hours=1))
    with pytest.raises(RuleInputError, match="ISO 8601"):
        deadline("yesterday", None, now=T0, limit=timedelta(hours=1))
    with pytest.raises(RuleInputError, match="before start"):
        deadline(T0, T0 - timedelta(hours=1), now=T0, limit=timedelta(hours=1))


class NightsOff:
    """A toy calendar for the test: only 09:00-17:00 counts (same day only)."""

    def add(self, start, duration):
        day_end = start.replace(hour=17, minute=0)
        if start + duration <= day_end:
            return start + duration
        rest = duration - (day_end - start)
        return (start + timedelta(days=1)).replace(hour=9, minute=0) + rest

    def elapsed(self, start, end):
        if end.date() == start.date():
            return end - start
        return (start.replace(hour=17, minute=0) - start) + (end - end.replace(hour=9, minute=0))


def test_deadline_counts_time_with_the_calendar_given():
    calendar = NightsOff()
    assert isinstance(calendar, Calendar) and isinstance(WallClock(), Calendar)
    start = T0.replace(hour=15)                      # 2 working hours left today
    limit = timedelta(hours=4)
    next_morning = (start + timedelta(days=1)).replace(hour=10, minute=30)
    assert deadline(start, next_morning, now=next_morning, limit=limit,
                    calendar=calendar).outcome is Outcome.PASS
    assert deadline(start, next_morning, now=next_morning, limit=limit).outcome is Outcome.FAIL
    assert deadline(start, None, now=next_morning, limit=limit,
                    calendar=calendar).outcome is Outcome.PENDING


# deduction ---------------------------------------------------------------------------

def test_telemarketing_two_points_per_non_standard_closing_phrase():
    result = deduction(1, points=2)
    assert result.outcome is Outcome.FAIL and result.deducted == 2


def test_deduction_stops_at_the_cap():
    assert deduction(3, points=2, cap=5).deducted == 5
    assert deduction(10, points=2, cap=5).evidence == {"count": 10, "points": 2, "cap": 5,
                                                        "deducted": 5}
    assert deduction(2, points=2, cap=5).deducted == 4


def test_deduction_without_occurrences_passes():
    for value in (0, None, []):
        result = deduction(value, points=2, cap=5)
        assert result.outcome is Outcome.PASS and result.deducted == 0


def test_deduction_counts_a_list_of_occurrences_and_keeps_it_as_evidence():
    result = deduction(["00:41 挂机前未致谢", "02:10 打断客户"], points=2)
    assert result.deducted == 4 and len(result.evidence["occurrences"]) == 2


def test_deduction_na_and_bad_counts():
    assert deduction("na", points=2).outcome is Outcome.NA
    for value in (-1, 1.5, True, "two"):
        with pytest.raises(RuleInputError):
            deduction(value, points=2)


# phrases -----------------------------------------------------------------------------

COURIER = {"required": ["您好", "再见"], "forbidden": ["不知道", "喂!", "问别人去!"]}


def test_courier_polite_delivery_passes_with_where_each_phrase_was_found():
    text = "您好。我是顺丰快递公司的，您的快件已到，请仔细查收你的快件。再见！"
    result = phrases(text, **COURIER)
    assert result.outcome is Outcome.PASS
    found = {entry["phrase"]: entry for entry in result.evidence["phrases"]}
    assert found["您好"]["at"] == [0] and found["您好"]["matched"] == ["您好"]
    assert found["再见"]["at"] == [text.index("再见")]
    assert found["不知道"] == {"phrase": "不知道", "kind": "forbidden", "found": False,
                             "at": (), "matched": ()}


@pytest.mark.parametrize("rude", ["喂!", "喂！", "喂 ！"])
def test_forbidden_phrase_matches_full_and_half_width(rude):
    text = f"{rude}您好，你的快件。再见"
    result = phrases(text, **COURIER)
    assert result.outcome is Outcome.FAIL
    entry = next(e for e in result.evidence["phrases"] if e["phrase"] == "喂!")
    assert entry["found"] and entry["at"] == [0]


def test_missing_required_phrase_fails_and_says_which():
    result = phrases("您好，快件放门口了", **COURIER)
    assert result.outcome is Outcome.FAIL
    missing = [e["phrase"] for e in result.evidence["phrases"] if e["kind"] == "required" and not e["found"]]
    assert missing == ["再见"]


def test_forbidden_phrase_in_the_middle_with_full_width_punctuation():
    text = "您好。这个我不知道，问别人去！再见"
    result = phrases(text, **COURIER)
    found = {e["phrase"]: e for e in result.evidence["phrases"] if e["found"]}
    assert set(found) == {"您好", "再见", "不知道", "问别人去!"}
    assert found["问别人去!"]["matched"] == ["问别人去"]
    assert text[found["不知道"]["at"][0]:].startswith("不知道")


def test_traditional_and_simplified_characters_are_the_same_phrase():
    # The call-QA seed is written in traditional characters, the phrase lists in simplified.
    result = phrases("您好，請稍等。再見", required=["再见", "您好"])
    assert result.outcome is Outcome.PASS
    entry = next(e for e in result.evidence["phrases"] if e["phrase"] == "再见")
    assert entry["matched"] == ["再見"] and entry["at"] == [7]
    assert phrases("你問別人去吧", forbidden=["问别人去"]).outcome is Outcome.FAIL
    # Either way round, and Taiwan and Hong Kong variants too (著 for 着, 裡 for 里).
    assert phrases("你问别人去吧", forbidden=["問別人去"]).outcome is Outcome.FAIL
    assert phrases("沒看我正忙著嗎，著什麼急", forbidden=["没看我正忙着吗,着什么急。"]).outcome is Outcome.FAIL
    assert phrases("東西在裡面", required=["在里面"]).outcome is Outcome.PASS


def test_a_phrase_is_not_found_across_sentences():
    # "不" ends one sentence and "知道" starts the next: no "不知道" was said.
    result = phrases("您看行不？知道您着急", forbidden=["不知道"])
    assert result.outcome is Outcome.PASS
    for end in "。！？!?；;\n\u2029":
        assert phrases(f"您看行不{end}知道您着急", forbidden=["不知道"]).outcome is Outcome.PASS, end
    # Punctuation inside a sentence is still ignored, as are sentence ends around a phrase.
    assert phrases("我不，知道", forbidden=["不知道"]).outcome is Outcome.FAIL
    assert phrases("？！不知道。", forbidden=["不知道!"]).outcome is Outcome.FAIL
    # A phrase of two sentences matches two sentences, however their end is written.
    result = phrases("喂？！  你好", forbidden=["喂！你好"])
    assert result.outcome is Outcome.FAIL
    assert result.evidence["phrases"][0]["matched"] == ["喂？！  你好"]
    assert phrases("喂你好", forbidden=["喂！你好"]).outcome is Outcome.PASS


def test_phrases_na_and_bad_input():
    assert phrases(None, required=["您好"]).outcome is Outcome.NA
    with pytest.raises(RuleInputError):
        phrases(42, required=["您好"])
    with pytest.raises(ValueError):
        PhraseMatcher(required=["！！"])
