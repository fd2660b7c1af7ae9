"""Rule types: the registry the engine resolves a rule's ``type`` against.

A :class:`RuleType` bundles a name, the marshmallow schema of the rule's parameters (the
keys of the rule table besides ``type``) and ``compile``: a function of the loaded
parameters and the item's code that returns an *evaluator* ``(values, context) ->
RuleResult``. Compiling does the work that does not depend on the record (normalising
phrases, reading limits) once per standard, not once per evaluation.

Core's types are in :func:`default_rules`; plugins add theirs to a copy of it (the
registry belongs to the app, not to this module).

Where a rule reads its input: ``values`` is a mapping (a record's fields, its ``data``,
or the answers of an inspection, keyed as the caller likes). A rule reads the key named
by its ``field`` parameter, which defaults to the item's code; ``deadline`` reads the two
keys named by ``start`` and ``stop``. A dotted name (``"timestamps.closed_at"``) walks
nested mappings when no key has that exact name; ``"data.x"`` reads the record's ``data``
key ``x`` (a record's data keys are at the top of its values). A missing key reads as
``None``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from operator import methodcaller
from typing import Any, NamedTuple

from marshmallow import Schema, ValidationError, fields, post_load, validate, validates_schema

from servq.core.calendar import WALL, Calendar, DeadlineLimit, deadline_limit
from servq.core.calendar.moments import parse_time_of_day
from servq.core.scoring import dated, rules
from servq.core.scoring.phrases import PhrasesParams, compile_phrases
from servq.core.scoring.rules import RuleResult


class Context(NamedTuple):
    """What an evaluator knows besides the values: the time, the business calendar and
    the tenant's placeholder values (``<hotline>`` in a phrase; see
    :mod:`core.scoring.phrases`)."""

    now: datetime
    calendar: Calendar
    # What this evaluation has worked out of the record's texts, shared by its items:
    # texts indexed so far by field ("path", "path[turn]"), and the phrases rule's
    # validated turns and views of them by tuple keys (core.scoring.phrases._view).
    texts: dict[Any, Any]
    placeholders: Mapping[str, str] = {}  # placeholder name -> value


Evaluator = Callable[[Mapping[str, Any], Context], RuleResult]


@dataclass(frozen=True)
class RuleType:
    """A kind of rule: its name, the schema of its parameters and how to compile one.

    ``compile(params, item_code)`` gets the parameters as loaded by ``schema`` and returns
    an evaluator ``(values, context) -> RuleResult``. The evaluator must be pure, return an
    :class:`~core.scoring.rules.Outcome` member (not a plain string) and raise
    :class:`~core.scoring.rules.RuleInputError` for a value it cannot judge.
    """

    name: str
    schema: type[Schema]
    compile: Callable[[Mapping[str, Any], str], Evaluator]
    description: str = ""


class RuleRegistry(dict[str, RuleType]):
    """Rule types by name."""

    def register(self, rule_type: RuleType) -> None:
        """Add ``rule_type``; a name can be registered only once."""
        if not isinstance(rule_type, RuleType):
            raise TypeError(f"not a RuleType: {rule_type!r}")
        if rule_type.name in self:
            raise ValueError(f"rule type {rule_type.name!r} is already registered")
        self[rule_type.name] = rule_type


def reader(name: str) -> Callable[[Mapping[str, Any]], Any]:
    """Return a function that reads key ``name`` (or the dotted path) from values."""
    if "." not in name:
        return methodcaller("get", name)  # runs in C: no Python frame per read
    keys = name.split(".")

    def read(values: Mapping[str, Any]) -> Any:
        if name in values:
            return values[name]
        for key in keys:
            if not isinstance(values, Mapping):
                return None
            values = values.get(key)
        return values

    if keys[0] != "data":
        return read
    inner = reader(name[len("data."):])

    def read_data(values: Mapping[str, Any]) -> Any:
        # "data.x": a record's data keys sit at the top of its values (x), unless the
        # values hold a "data" mapping of their own.
        value = read(values)
        return inner(values) if value is None and not isinstance(values.get("data"), Mapping) else value

    return read_data


class _Params(Schema):
    field = fields.String(validate=validate.Length(min=1, max=200))


class CheckParams(_Params):
    """``check``: the answer at ``field`` is pass, fail or n.a."""


class MeasureParams(_Params):
    """``measure``: a number at ``field`` within ``min``/``max`` or ``target ± tolerance``.

    With ``per`` (the field of a whole), the number measured is the exact share ``field /
    per`` (× 100 with ``percent = true``): ``field = "lights_working", per =
    "lights_total", percent = true, min = 99``. Never rounded, so 2,473 of 2,498 (98.9992
    %) is below 99; a missing part or whole, or a whole of 0, is n.a.
    """

    min = fields.Float(allow_nan=False)
    max = fields.Float(allow_nan=False)
    target = fields.Float(allow_nan=False)
    tolerance = fields.Float(allow_nan=False, validate=validate.Range(min=0))
    unit = fields.String(validate=validate.Length(max=20))
    per = fields.String(validate=validate.Length(min=1, max=200))
    percent = fields.Boolean()

    @validates_schema
    def _ratio(self, data, **kwargs):
        if data.get("percent") is not None and "per" not in data:
            raise ValidationError("percent goes with per (the field of the whole)", "percent")

    @validates_schema
    def _bounds(self, data, **kwargs):
        if "target" in data:
            if "min" in data or "max" in data:
                raise ValidationError("give either target (± tolerance) or min/max, not both")
        elif "min" not in data and "max" not in data:
            raise ValidationError("a measure needs min, max or target")
        elif "tolerance" in data:
            raise ValidationError("tolerance goes with target")
        elif "min" in data and "max" in data and data["min"] > data["max"]:
            raise ValidationError("min is above max")


def _scalar(value: Any) -> None:
    """Validator: a value a ``when`` condition compares with (text, number or boolean)."""
    if not isinstance(value, (str, int, float)) or value != value:
        raise ValidationError("a text, a number or true/false")


def deadline_applies(params: Mapping[str, Any], values: Mapping[str, Any]) -> bool:
    """Whether a ``deadline`` rule applies to a record with ``values``: it has no ``when``,
    or every value it names is one of those listed (``when = {priority = ["urgent"]}``)."""
    when = params.get("when")
    if not when:
        return True
    for name, accepted in when.items():
        value = reader(name)(values)
        if not any(_same(value, option) for option in accepted):
            return False
    return True


def _time_of_day(value: Any) -> None:
    """Validator: a local time of day, ``HH:MM``."""
    try:
        parse_time_of_day(value)
    except ValueError as error:
        raise ValidationError(str(error)) from error


def _same(value: Any, option: Any) -> bool:
    """Equality that keeps booleans apart from numbers (``True`` is not ``1`` here)."""
    if isinstance(value, bool) or isinstance(option, bool):
        return value is option
    return value == option


def _limit_text(value: Any) -> None:
    """A pause cap: a limit as text (``"5 working days"``, ``"48h"``)."""
    from servq.core.calendar import parse_limit

    try:
        parse_limit(value)
    except ValueError as exc:
        raise ValidationError(str(exc)) from exc


class DeadlineParams(Schema):
    """``deadline``: from timestamp ``start`` to timestamp ``stop`` within ``limit``.

    ``limit`` is a :class:`core.calendar.Limit` written as text (``"30m"``, ``"4h"``,
    ``"3 days"``, ``"8 working hours"``, ``"5 working days"``, ``"5个工作日"``; compound
    durations such as ``"1h30m"`` too). ``clock`` says how time counts: ``"business"``
    (the tenant's calendar) or ``"wall"``. A working limit implies ``"business"`` (saying
    ``"wall"`` with it is an error); a plain limit is wall time unless ``clock =
    "business"``, which reads it as working time (``"3 days"`` as 3 working days). Once
    loaded, ``clock`` is always present and says what the rule counts.

    ``when`` (optional) makes the item apply only to some records: ``{name: [values]}``,
    each name read like ``start`` (a key of ``data``, such as ``"priority"``, or a dotted
    path); the rule applies when every name holds one of its values and is n.a. otherwise,
    with no deadline clock: ``when = { priority = ["urgent"] }``.

    Instead of ``limit`` (exactly one of the three is given):

    * ``due`` (a dotted path, like ``start``): due at the instant the record holds there
      (``"data.appointment.to"``, ``"timestamps.promised_at"``); with ``before`` (a limit:
      real time, or working hours/minutes, not working days) due that long before it
      (``due = "data.window.to", before = "30 minutes"``). No instant there: n.a., no clock.
    * ``due_time = "HH:MM"``: due at that local time (the tenant calendar's time zone) on the
      local date of ``start``; ``days_after`` (default 0) calendar days later; with
      ``working_day = true`` a day without working time rolls to the next working day
      (:func:`core.calendar.moments.local_time_due`: DST and a start after the time).

    Instead of ``stop``, ``stop_any = ["timestamps.a", "timestamps.b"]``: the earliest of
    those set stops the clock (exactly one of ``stop`` and ``stop_any``). See
    :mod:`core.scoring.dated`.

    ``pauses_in`` (optional) names the workflow waiting states that pause the clock:
    ``["waiting_customer"]`` only that one, ``[]`` never (a response clock); absent, every
    waiting state. ``pause_cap`` (optional) caps the time the clock may stay paused, per
    waiting state and in all (``"total"``), each a limit as above:
    ``{waiting_customer = "5 working days", total = "10 working days"}``; at its cap the
    clock resumes by itself.
    """

    start = fields.String(required=True, validate=validate.Length(min=1, max=200))
    stop = fields.String(validate=validate.Length(min=1, max=200))
    stop_any = fields.List(fields.String(validate=validate.Length(min=1, max=200)),
                           validate=validate.Length(min=1, max=10))
    limit = DeadlineLimit()
    due = fields.String(validate=validate.Length(min=1, max=200))
    before = DeadlineLimit()
    due_time = fields.String(validate=_time_of_day)
    days_after = fields.Integer(strict=True, validate=validate.Range(min=0, max=366))
    working_day = fields.Boolean()
    clock = fields.String(validate=validate.OneOf(("wall", "business")))
    when = fields.Dict(keys=fields.String(validate=validate.Length(min=1, max=200)),
                       values=fields.List(fields.Raw(validate=_scalar), validate=validate.Length(min=1)),
                       validate=validate.Length(min=1, max=20))
    pauses_in = fields.List(fields.String(validate=validate.Length(min=1, max=100)),
                            validate=validate.Length(max=50))
    pause_cap = fields.Dict(keys=fields.String(validate=validate.Length(min=1, max=100)),
                            values=fields.String(validate=_limit_text),
                            validate=validate.Length(min=1, max=50))

    @validates_schema
    def _one_due(self, data, **kwargs):
        given = [name for name in ("limit", "due", "due_time") if name in data]
        if len(given) != 1:
            raise ValidationError(
                "give exactly one of limit (a duration from start), due (a moment in the record) "
                f"or due_time (a local time of day), not {' and '.join(given) or 'none'}", "limit")
        if "before" in data and "due" not in data:
            raise ValidationError("before goes with due (a limit before that moment)", "before")
        for name in ("days_after", "working_day"):
            if name in data and "due_time" not in data:
                raise ValidationError(f"{name} goes with due_time", name)
        business = data.get("clock") == "business"
        if business and ("due_time" in data or ("due" in data and "before" not in data)):
            raise ValidationError("a due moment or due_time counts no time: clock = 'business' "
                                  "goes with limit or before", "clock")
        before = data.get("before")
        if before is not None and (before.working or business) and before.unit == "day":
            raise ValidationError(f"before counts real time or working hours/minutes, not {str(before)!r}",
                                  "before")

    @validates_schema
    def _one_stop(self, data, **kwargs):
        if ("stop" in data) == ("stop_any" in data):
            raise ValidationError("give exactly one of stop (a stamp) or stop_any (a list of stamps: "
                                  "the earliest stops the clock)", "stop")

    @validates_schema
    def _clock(self, data, **kwargs):
        limit = data.get("limit", data.get("before"))
        if limit is not None and limit.working and data.get("clock") == "wall":
            raise ValidationError(f"the limit {str(limit)!r} counts working time: "
                                  "drop clock = 'wall' or give a plain limit", "clock")

    @validates_schema
    def _caps(self, data, **kwargs):
        listed = data.get("pauses_in")
        if listed is None:
            return
        stray = sorted(set(data.get("pause_cap") or ()) - set(listed) - {"total"})
        if stray:
            raise ValidationError(f"caps {', '.join(stray)} name states that do not pause this "
                                  "clock (pauses_in); cap those states or 'total'", "pause_cap")

    @post_load
    def _settle_clock(self, data, **kwargs):
        if "clock" not in data:
            limit = data.get("limit", data.get("before"))
            data["clock"] = "business" if limit is not None and limit.working else "wall"
        return data


class DeductionParams(_Params):
    """``deduction``: ``points`` per occurrence counted at ``field``, at most ``cap``."""

    points = fields.Float(required=True, allow_nan=False, validate=validate.Range(min=0, min_inclusive=False))
    cap = fields.Float(allow_nan=False, validate=validate.Range(min=0, min_inclusive=False))


def _compile_check(params, code):
    field = params.get("field", code)
    check, passed, failed = rules.check, rules.CHECK_TRUE, rules.CHECK_FALSE
    if "." in field:
        read = reader(field)
        return lambda values, context: check(read(values))

    def evaluate(values, context):
        # The common answers skip the call into check(), which returns the same objects.
        value = values.get(field)
        if value is True:
            return passed
        if value is False:
            return failed
        return check(value)

    return evaluate


def _compile_measure(params, code):
    read = reader(params.get("field", code))
    # The bounds exactly, as the decimals written (0.4 ± 0.1 is [0.3, 0.5]), and as the
    # nearest floats for the fast path below.
    low, high = rules.bounds(params.get("min"), params.get("max"), params.get("target"),
                             params.get("tolerance", 0.0))
    within, new, passed, failed = rules.within, rules.new_result, rules.PASS, rules.FAIL
    shown_low, shown_high = rules.shown(low), rules.shown(high)
    if "per" in params:
        read_whole, percent, ratio = reader(params["per"]), bool(params.get("percent")), rules.ratio

        def of_ratio(values, context):
            part, whole = read(values), read_whole(values)
            share = ratio(part, whole, percent=percent)
            if share is None:
                return new((rules.NA, {"value": None, "part": part, "whole": whole}, None))
            return within(share, low, high, {"part": part, "whole": whole})

        return of_ratio
    flow = None if low is None else float(low)
    fhigh = None if high is None else float(high)

    def evaluate(values, context):
        value = read(values)
        if (value.__class__ is float or (value.__class__ is int and -_EXACT_INT < value < _EXACT_INT)) \
                and value != flow and value != fhigh:
            # A float orders against the nearest float of a bound as its decimal orders
            # against the bound (their rounding intervals do not overlap); only a tie needs
            # the exact comparison of within(). NaN and infinities go there too.
            if value - value == 0:
                ok = (flow is None or value > flow) and (fhigh is None or value < fhigh)
                return new((passed if ok else failed,
                            {"value": value, "min": shown_low, "max": shown_high}, None))
        return within(value, low, high)

    return evaluate


_EXACT_INT = 2 ** 53  # every int below is a float exactly


def _compile_deadline(params, code):
    read_start = reader(params["start"])
    if dated.is_dated(params) or "stop_any" in params:
        evaluate = _compile_dated(params, read_start)
    else:
        read_stop = reader(params["stop"])
        limit = deadline_limit(params)
        business, span, text = limit.working, limit.timedelta, str(limit)
        timed = rules.timed

        def evaluate(values, context):
            return timed(read_start(values), read_stop(values), context.now, limit, span, text,
                         context.calendar if business else WALL)

    if not params.get("when"):
        return evaluate

    def conditional(values, context):
        if not deadline_applies(params, values):
            return _NOT_APPLICABLE
        return evaluate(values, context)

    return conditional


def _compile_dated(params, read_start):
    """The evaluator of a deadline due at a moment or stopped by ``stop_any``
    (:mod:`core.scoring.dated`, shared with the deadline clocks)."""
    stop = dated.stop_of(params)
    text, business = dated.target_text(params), dated.working(params)
    if not dated.is_dated(params):  # a limit with stop_any
        limit = deadline_limit(params)

        def evaluate(values, context):
            return rules.timed(read_start(values), stop(values), context.now, limit, limit.timedelta,
                               text, context.calendar if business else WALL)

        return evaluate
    due_of, as_instant = dated.due_of(params), rules.as_instant

    def evaluate(values, context):
        start = as_instant(read_start(values), "start")
        due = None if start is None else due_of(values, start, context.calendar)
        return rules.dated(start, stop(values), context.now, due, text,
                           context.calendar if business else WALL)

    return evaluate


_NOT_APPLICABLE = RuleResult(rules.NA, rules.FrozenEvidence({"start": None, "applies": False}))


def _compile_deduction(params, code):
    read = reader(params.get("field", code))
    points, cap = params["points"], params.get("cap")
    deduct = rules.deduct
    # No occurrence is the common answer; its result is the same every time.
    none = deduct(0, points, cap)
    none = RuleResult(none.outcome, rules.FrozenEvidence(none.evidence), none.deducted)

    def evaluate(values, context):
        value = read(values)
        if value is None or (value.__class__ is int and value == 0):
            return none
        return deduct(value, points, cap)

    return evaluate


CORE_RULE_TYPES = (
    RuleType("check", CheckParams, _compile_check, "pass, fail or n.a."),
    RuleType("measure", MeasureParams, _compile_measure, "a number against a range or target"),
    RuleType("deadline", DeadlineParams, _compile_deadline, "time between two timestamps"),
    RuleType("deduction", DeductionParams, _compile_deduction, "points per occurrence, capped"),
    RuleType("phrases", PhrasesParams, compile_phrases, "required and forbidden phrases"),
)


def default_rules() -> RuleRegistry:
    """Return a new registry holding core's rule types."""
    registry = RuleRegistry()
    for rule_type in CORE_RULE_TYPES:
        registry.register(rule_type)
    return registry
