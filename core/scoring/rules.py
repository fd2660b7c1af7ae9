"""The rule types of core, each a pure function of plain values.

A rule answers one question about one item of a standard and returns a
:class:`RuleResult`: an :class:`Outcome` and the evidence for it. Rules know nothing of
weights or points: the scoring method (:mod:`core.scoring.methods`) turns outcomes into
points. The ``deduction`` rule alone also says how many points the lapses cost.

What a value may be (anything else raises :class:`RuleInputError`):

- ``check``: ``True``/``False``, ``"pass"``/``"fail"``/``"na"``; missing or ``None`` is n.a.
- ``measure``: a number (not a bool): an int, a float, a ``Decimal`` or a ``Fraction``
  (:func:`ratio` gives the exact share of two counts); missing or ``None`` is n.a.
  Numbers are compared exactly as the decimals they were written as, never rounded:
  2,473 of 2,498 lights (98.9992 %) is below ``min = 99``, and ``target ± tolerance``
  is worked out in decimals (0.4 ± 0.1 starts at 0.3, not at 0.30000000000000004).
- ``deadline``: two aware datetimes (or ISO 8601 texts with an offset); a missing start
  is n.a. (the clock never started), a missing stop is pending or breached. The limit
  is a :class:`core.calendar.Limit` (``"4h"``, ``"5 working days"``).
- ``deduction``: a count of occurrences (int >= 0) or a list of them; missing or ``None``
  is no occurrence; ``"na"`` is n.a.
- ``phrases``: a text (or, through :mod:`core.scoring.phrases`, a transcript of turns); missing or ``None`` is n.a.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from decimal import Decimal
from enum import StrEnum
from fractions import Fraction
from functools import partial
from typing import Any, Iterable, Mapping, NamedTuple

from servq.core.calendar.limits import Limit, parse_limit
from servq.core.calendar.clock import WALL, Calendar
from servq.core.calendar.durations import format_duration
from servq.core.scoring.text import IndexedText, index, normalise, phrase_pattern


class Outcome(StrEnum):
    """What became of one item."""

    PASS = "pass"
    FAIL = "fail"
    NA = "na"
    PENDING = "pending"    # a deadline not yet due and not yet met
    BREACHED = "breached"  # a deadline past due and still not met


class RuleResult(NamedTuple):
    """The answer of a rule: the outcome, its evidence and, for deductions, the cost."""

    outcome: Outcome
    evidence: Mapping[str, Any]
    deducted: float | None = None


# RuleResult(...) runs a Python-level __new__; the hot paths build the tuple in C:
# new_result((outcome, evidence, deducted)).
new_result = partial(tuple.__new__, RuleResult)


class FrozenEvidence(dict):
    """A read-only ``dict``: the evidence of results made once and shared by many
    evaluations (``CHECK_TRUE``, a phrase not found, …).

    A ``dict`` (not a read-only view) so that serialisers that know ``dict`` (orjson,
    ``json``) write it as it is, without a conversion per evaluation; every method that
    would change it raises ``TypeError``.
    """

    __slots__ = ()

    def _read_only(self, *args: Any, **kwargs: Any):
        raise TypeError("shared evidence is read-only")

    __setitem__ = __delitem__ = __ior__ = _read_only
    clear = pop = popitem = setdefault = update = _read_only

    def __reduce__(self):
        return (FrozenEvidence, (dict(self),))

    def __copy__(self):
        return self

    def __deepcopy__(self, memo):
        return self


class TextEvidence(dict):
    """Evidence with no ``float`` anywhere in it (texts, offsets, flags, ``None``), as the
    rule that builds it guarantees: the ``phrases`` rule's. A ``dict`` like any other
    evidence; a serialiser that must refuse numbers that are not finite
    (:func:`core.evaluation.evaluations.items_json`) need not look into it, which on a
    transcript is most of an evaluation's evidence."""

    __slots__ = ()


class RuleInputError(ValueError):
    """A value the rule cannot judge (wrong type, naive datetime, …)."""


PASS, FAIL, NA, PENDING, BREACHED = (Outcome.PASS, Outcome.FAIL, Outcome.NA,
                                     Outcome.PENDING, Outcome.BREACHED)
_CHECK_WORDS = {"pass": PASS, "fail": FAIL, "na": NA, "n.a.": NA, "n/a": NA}
# Results that never vary are made once; their evidence is read-only so sharing is safe.
CHECK_TRUE = RuleResult(PASS, FrozenEvidence({"value": True}))
CHECK_FALSE = RuleResult(FAIL, FrozenEvidence({"value": False}))
CHECK_NONE = RuleResult(NA, FrozenEvidence({"value": None}))
_CHECK_BY_WORD = {outcome: RuleResult(outcome, FrozenEvidence({"value": outcome.value}))
                  for outcome in (PASS, FAIL, NA)}


def check(value: Any) -> RuleResult:
    """Pass, fail or n.a., as answered."""
    if value is True:
        return CHECK_TRUE
    if value is False:
        return CHECK_FALSE
    if value is None:
        return CHECK_NONE
    if isinstance(value, str) and value.strip().lower() in _CHECK_WORDS:
        return _CHECK_BY_WORD[_CHECK_WORDS[value.strip().lower()]]
    raise RuleInputError(f"a check is answered true, false, 'pass', 'fail' or 'na', not {value!r}")


def measure(value: Any, *, min: float | None = None, max: float | None = None,
            target: float | None = None, tolerance: float = 0.0) -> RuleResult:
    """Pass when ``value`` lies in ``[min, max]`` (either may be open) or ``target ± tolerance``."""
    low, high = bounds(min, max, target, tolerance)
    return within(value, low, high)


def exact(number: int | float | Decimal | Fraction) -> Fraction:
    """``number`` as the exact decimal it was written as: a float by its shortest repr
    (``57.3`` is 573/10, not the binary 57.29999…), a ``Decimal`` or an int as it is."""
    if number.__class__ is float:
        return Fraction(repr(number))
    return Fraction(number)


def bounds(min: float | None = None, max: float | None = None, target: float | None = None,
           tolerance: float | None = 0.0) -> tuple[Fraction | None, Fraction | None]:
    """The exact ``(low, high)`` of a measure; ``None`` leaves that side open."""
    if target is not None:
        centre, spread = exact(target), exact(tolerance or 0)
        return centre - spread, centre + spread
    return (None if min is None else exact(min)), (None if max is None else exact(max))


def ratio(part: Any, whole: Any, *, percent: bool = False) -> Fraction | None:
    """The exact share ``part / whole`` (× 100 with ``percent``), for :func:`measure`.

    ``None`` (n.a.) when either is missing or ``whole`` is 0: there is nothing to measure.
    :raises RuleInputError: when either is not a number.
    """
    if part is None or whole is None:
        return None
    for name, number in (("part", part), ("whole", whole)):
        if isinstance(number, bool) or not isinstance(number, (int, float, Decimal, Fraction)) \
                or not _finite(number):
            raise RuleInputError(f"a ratio's {name} is a number, not {number!r}")
    if not whole:
        return None
    share = exact(part) / exact(whole)
    return share * 100 if percent else share


def _finite(number: Any) -> bool:
    """Not NaN nor infinite (a ``Fraction`` and an int always are finite)."""
    if isinstance(number, Decimal):
        return number.is_finite()
    return number - number == 0


def within(value: Any, low: float | Fraction | None, high: float | Fraction | None,
           extra: Mapping[str, Any] | None = None) -> RuleResult:
    """Pass when ``low <= value <= high`` (``None`` leaves that side open); the core of measure.

    Compared exactly (see :func:`exact`); the evidence gives the value and the bounds as
    floats (the nearest ones: for display), and ``extra`` when given.
    """
    if value is None:
        return CHECK_NONE
    if isinstance(value, bool) or not isinstance(value, (int, float, Decimal, Fraction)) \
            or not _finite(value):
        raise RuleInputError(f"a measure is a number, not {value!r}")
    number = exact(value)
    low = None if low is None else exact(low)
    high = None if high is None else exact(high)
    ok = (low is None or number >= low) and (high is None or number <= high)
    evidence = {"value": value if value.__class__ in (int, float) else float(value),
                "min": shown(low), "max": shown(high)}
    if extra:
        evidence.update(extra)
    return new_result((PASS if ok else FAIL, evidence, None))


def shown(bound: Fraction | None) -> int | float | None:
    """A bound as the evidence shows it: an int when whole, else the nearest float."""
    if bound is None:
        return None
    return bound.numerator if bound.denominator == 1 else float(bound)


def as_instant(value: Any, name: str) -> datetime | None:
    """Return ``value`` as an aware datetime (ISO 8601 texts accepted), or ``None``."""
    if value is None:
        return None
    if value.__class__ is datetime and value.utcoffset() is not None:
        return value  # the common case, first
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value)
        except ValueError as error:
            raise RuleInputError(f"{name}: not an ISO 8601 timestamp: {value!r}") from error
    if not isinstance(value, datetime):
        raise RuleInputError(f"{name}: a timestamp is expected, not {value!r}")
    if value.utcoffset() is None:
        raise RuleInputError(f"{name}: the timestamp has no time zone: {value.isoformat()}")
    return value


def deadline(start: Any, stop: Any, *, now: datetime, limit: Limit | str | timedelta,
             calendar: Calendar = WALL) -> RuleResult:
    """Was ``stop`` reached within ``limit`` of counted time after ``start``?

    Met in time (``stop`` at or before the due time): pass; met late: fail; not met and
    ``now`` is not past the due time: pending; not met and ``now`` is past it: breached.
    No start: n.a.

    ``limit`` is a :class:`core.calendar.Limit` or its text (``"4h"``, ``"5 working
    days"``): a working limit is counted with ``calendar``, a plain one in wall time. A
    ``timedelta`` is counted with ``calendar`` (use :data:`WALL` for wall time).
    Evidence: ``start``, ``stop``, ``due``, ``elapsed`` (counted time, when stopped),
    ``limit`` (its text) and ``business`` (whether ``calendar`` counted it).
    """
    if isinstance(limit, timedelta):
        text = format_duration(limit)
        return timed(start, stop, now, limit, limit, text, calendar)
    limit = parse_limit(limit)
    return timed(start, stop, now, limit, limit.timedelta, str(limit),
                 calendar if limit.working else WALL)


def timed(start: Any, stop: Any, now: datetime, limit: Limit | timedelta, span: timedelta,
          text: str, calendar: Calendar) -> RuleResult:
    """:func:`deadline` with its terms worked out, for compiled rules.

    ``limit`` goes to ``calendar.add``; ``span`` is its wall-clock length, used instead
    when ``calendar`` is :data:`WALL`; ``text`` is the limit as the evidence shows it.
    """
    # Aware datetimes, the usual values, skip the call into as_instant().
    if start.__class__ is datetime and start.utcoffset() is not None:
        begin = start
    else:
        begin = as_instant(start, "start")
        if begin is None:
            return _DEADLINE_NA
    end = stop if stop.__class__ is datetime and stop.utcoffset() is not None else \
        as_instant(stop, "stop")
    wall = calendar is WALL
    due = begin + span if wall else calendar.add(begin, limit)
    if end is None:
        return new_result((BREACHED if now > due else PENDING,
                           {"start": begin, "stop": None, "due": due, "elapsed": None,
                            "limit": text, "business": not wall}, None))
    if end < begin:
        raise RuleInputError(f"stop ({end.isoformat()}) is before start ({begin.isoformat()})")
    elapsed = end - begin if wall else calendar.elapsed(begin, end)
    return new_result((PASS if end <= due else FAIL,
                       {"start": begin, "stop": end, "due": due, "elapsed": elapsed,
                        "limit": text, "business": not wall}, None))


_DEADLINE_NA = RuleResult(NA, FrozenEvidence({"start": None}))


def dated(start: Any, stop: Any, now: datetime, due: datetime | None, text: str,
          calendar: Calendar) -> RuleResult:
    """:func:`timed` for a deadline due at a given instant (``due``: a moment held in the
    record, a limit before it, a local time of day; see :mod:`core.scoring.dated`).

    Stopped at or before ``due``: pass; later: fail; not stopped: pending until ``due``,
    breached after. No start, or no due instant: n.a. ``elapsed`` (when stopped) counts
    ``calendar``'s time; ``text`` is the rule as the evidence shows it (``"at data.x"``).
    """
    begin = as_instant(start, "start")
    if begin is None:
        return _DEADLINE_NA
    if due is None:
        return new_result((NA, {"start": begin, "stop": None, "due": None, "elapsed": None,
                                "limit": text, "business": calendar is not WALL}, None))
    end = as_instant(stop, "stop")
    wall = calendar is WALL
    if end is None:
        return new_result((BREACHED if now > due else PENDING,
                           {"start": begin, "stop": None, "due": due, "elapsed": None,
                            "limit": text, "business": not wall}, None))
    if end < begin:
        raise RuleInputError(f"stop ({end.isoformat()}) is before start ({begin.isoformat()})")
    elapsed = end - begin if wall else calendar.elapsed(begin, end)
    return new_result((PASS if end <= due else FAIL,
                       {"start": begin, "stop": end, "due": due, "elapsed": elapsed,
                        "limit": text, "business": not wall}, None))


def count_of(value: Any) -> int | None:
    """Return the number of occurrences ``value`` stands for; ``None`` for n.a."""
    if value is None:
        return 0
    if isinstance(value, str) and value.strip().lower() in ("na", "n.a.", "n/a"):
        return None
    if isinstance(value, (list, tuple)):
        return len(value)
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise RuleInputError(f"a deduction counts occurrences (an integer >= 0 or a list), not {value!r}")
    return value


def deduction(value: Any, *, points: float, cap: float | None = None) -> RuleResult:
    """Deduct ``points`` per occurrence, at most ``cap`` in all; no occurrence passes."""
    return deduct(value, points, cap)


def deduct(value: Any, points: float, cap: float | None) -> RuleResult:
    """:func:`deduction` with positional arguments, for compiled rules."""
    count = count_of(value)
    if count is None:
        return RuleResult(NA, {"count": None})
    uncapped = count * points
    deducted = uncapped if cap is None or uncapped <= cap else cap
    evidence = {"count": count, "points": points, "cap": cap, "deducted": deducted}
    if isinstance(value, (list, tuple)):
        evidence["occurrences"] = list(value)
    return new_result((FAIL if count else PASS, evidence, deducted))


class PhraseMatcher:
    """Required and forbidden phrases, normalised once, matched against many texts."""

    __slots__ = ("entries",)

    def __init__(self, required: Iterable[str] = (), forbidden: Iterable[str] = ()):
        # (phrase as written, its normal form, kind, whether it must be present, the
        # read-only evidence of its absence, made once since most phrases are not there,
        # and the pattern of a phrase of several sentences, None for one sentence)
        self.entries = tuple(
            (phrase, form, kind, kind == "required", FrozenEvidence(
                {"phrase": phrase, "kind": kind, "found": False, "at": (), "matched": ()}),
             phrase_pattern(form))
            for kind, phrases in (("required", required), ("forbidden", forbidden))
            for phrase in phrases for form in (normalise(phrase),))
        empty = [entry[0] for entry in self.entries if not entry[1]]
        if empty:
            raise ValueError(f"phrases of nothing but punctuation or spaces: {empty!r}")

    def __call__(self, text: Any, indexed: IndexedText | None = None) -> RuleResult:
        """Judge ``text``; ``indexed`` is its :func:`~core.scoring.text.index` if known."""
        if text is None:
            return RuleResult(NA, TextEvidence(text=None))
        if not isinstance(text, str):
            raise RuleInputError(f"phrases are looked for in a text, not {text!r}")
        return self.judge(text, index(text) if indexed is None else indexed)

    def judge(self, text: str, indexed: IndexedText) -> RuleResult:
        """:meth:`__call__` for a text (a ``str``) already indexed (``indexed``)."""
        normal = indexed.normal
        ok = True
        found = []
        for phrase, form, kind, wanted, absent, pattern in self.entries:
            if (form in normal) if pattern is None else (pattern.search(normal) is not None):
                spans = indexed.find_all(form, pattern)
                found.append({"phrase": phrase, "kind": kind, "found": True,
                              "at": [span[0] for span in spans],
                              "matched": [text[begin:end] for begin, end in spans],
                              "matches": [{"phrase": phrase, "text": text[begin:end], "start": begin,
                                           "end": end, "turn": None} for begin, end in spans]})
                if not wanted:
                    ok = False
            else:
                found.append(absent)
                if wanted:
                    ok = False
        return new_result((PASS if ok else FAIL, TextEvidence(phrases=found), None))


def phrases(text: Any, *, required: Iterable[str] = (), forbidden: Iterable[str] = ()) -> RuleResult:
    """Pass when ``text`` holds every required phrase and no forbidden one.

    Matching ignores width, case, punctuation and spaces, folds traditional characters to
    simplified ones, and stays within a sentence (:mod:`core.scoring.text`); the evidence
    names each phrase, whether it was found and at which offsets of ``text``.
    """
    return PhraseMatcher(required, forbidden)(text)
