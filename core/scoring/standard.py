"""The standard document: its dataclasses, its schema and its loaders.

A standard is a versioned, bilingual set of items, written as TOML or JSON::

    code = "acme.front_desk"          # lower-case letters, digits, ".", "_", "-"
    version = 1
    title = { en = "Front desk", zh = "前台" }
    applies_to = ["inspection"]       # record kinds
    method = "weighted"               # or "deduction" (see core.scoring.methods)
    pass_mark = 80                    # percent
    base = 100                        # deduction method: the points a record starts with
    grades = [{ grade = "A", min = 90 }, { grade = "B", min = 75 }, { grade = "C", min = 0 }]
    replaces = ["core.complaint"]     # optional: where this standard is in force, the
                                      # standards named here no longer score those kinds

    [[items]]
    code = "greeting"
    title = { en = "Greets the guest", zh = "问候客人" }
    dimension = "assurance"           # tangibles|reliability|responsiveness|assurance|empathy
    weight = 10                       # default 1
    critical = false                  # a failure fails the record and scores it 0
    bonus = false                     # points on top, never counted in the maximum
    fix_within = "24h"                # optional: time allowed for the corrective action
    escalate_to = ["manager"]         # optional: roles notified when the item fails/breaches
    action_on_failure = true          # optional: open a corrective action on any failure
                                      # (failed critical items always open one)
    kpi = "response"                  # optional, deadline items only: the item times the
                                      # response ("response") or the resolution ("resolution")
                                      # of a record for the response/resolution time KPIs
    rule = { type = "phrases", field = "transcript", required = ["您好"] }
                                      # phrases: also "transcript[speaker=agent]", turn =
                                      # "first"/"last", groups [["您好", "你好"]], blanks
                                      # "____", <placeholders>, "@taboo" (core.scoring.phrases)

    [[items]]                         # a deadline: "30m", "4h", "3 days", "8 working hours",
    code = "resolved_in_time"         # "5 working days", "5个工作日"; working limits count
    title = { en = "Resolved in time", zh = "按时处理" }   # the tenant's business calendar
    dimension = "responsiveness"
    rule = { type = "deadline", start = "occurred_at", stop = "timestamps.resolved_at", limit = "5 working days" }

The rule's ``type`` names a rule type of the registry; its other keys are checked by
that type's schema (:mod:`core.scoring.registry`). Plugins ship standards as files in
their package and load them with :func:`load_standard` / :func:`load_standards`.
"""

from __future__ import annotations

import json
import tomllib
from dataclasses import dataclass, field
from datetime import timedelta
from importlib import resources
from typing import Any, Mapping

from marshmallow import Schema, ValidationError, fields, post_load, validate, validates_schema

from servq.core.calendar.durations import Duration
from servq.core.scoring.methods import METHODS
from servq.core.scoring.registry import RuleRegistry, default_rules

DIMENSIONS = ("tangibles", "reliability", "responsiveness", "assurance", "empathy")
#: What a deadline item may time for the KPIs (``kpi`` of an item).
KPI_TAGS = ("response", "resolution")
CODE = validate.Regexp(r"^[a-z0-9][a-z0-9_.\-]{0,99}$",
                       error="use lower-case letters, digits, '.', '_' and '-' (at most 100)")


@dataclass(frozen=True)
class Title:
    """A text in English and Chinese."""

    en: str
    zh: str


@dataclass(frozen=True)
class Rule:
    """A rule: its type and its parameters as loaded by the type's schema."""

    type: str
    params: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Item:
    """One item of a standard."""

    code: str
    title: Title
    dimension: str
    rule: Rule
    weight: float = 1.0
    critical: bool = False
    bonus: bool = False
    fix_within: timedelta | None = None
    # What a breach of this item (a failed or breached deadline) sets in motion beyond the
    # record's escalation level: the roles to notify and whether to open a corrective action.
    escalate_to: tuple[str, ...] = ()
    action_on_failure: bool = False
    # A deadline item that times the record's response or resolution (docs/kpis.md).
    kpi: str | None = None


@dataclass(frozen=True)
class GradeBand:
    """A grade given from ``min`` percent upwards (up to the next band)."""

    grade: str
    min: float
    title: Title | None = None


@dataclass(frozen=True)
class Standard:
    """One version of a standard."""

    code: str
    version: int
    title: Title
    applies_to: tuple[str, ...]
    method: str
    pass_mark: float
    items: tuple[Item, ...]
    grades: tuple[GradeBand, ...] = ()   # highest ``min`` first
    base: float = 100.0
    # Codes of standards this one replaces for the records it applies to (a plugin's
    # complaint standard replacing core's default where the plugin is enabled).
    replaces: tuple[str, ...] = ()

    def item(self, code: str) -> Item:
        """Return the item ``code``; :raises KeyError: when there is none."""
        for item in self.items:
            if item.code == code:
                return item
        raise KeyError(code)

    def grade_for(self, percent: float | None) -> str | None:
        """Return the grade of ``percent``: the band with the highest ``min`` it reaches."""
        if percent is None:
            return None
        for band in self.grades:
            if percent >= band.min:
                return band.grade
        return None


class TitleSchema(Schema):
    """``{en, zh}``; both are required."""

    en = fields.String(required=True, validate=validate.Length(min=1, max=300))
    zh = fields.String(required=True, validate=validate.Length(min=1, max=300))

    @post_load
    def _make(self, data, **kwargs):
        return Title(**data)


class GradeSchema(Schema):
    """One grade band."""

    grade = fields.String(required=True, validate=validate.Length(min=1, max=20))
    min = fields.Float(required=True, allow_nan=False, validate=validate.Range(min=0, max=100))
    title = fields.Nested(TitleSchema, allow_none=True, load_default=None)

    @post_load
    def _make(self, data, **kwargs):
        return GradeBand(**data)


class ItemSchema(Schema):
    """One item; ``rule`` is checked by the standard schema against the rule registry."""

    code = fields.String(required=True, validate=CODE)
    title = fields.Nested(TitleSchema, required=True)
    dimension = fields.String(required=True, validate=validate.OneOf(DIMENSIONS))
    weight = fields.Float(load_default=1.0, allow_nan=False, validate=validate.Range(min=0))
    critical = fields.Boolean(load_default=False)
    bonus = fields.Boolean(load_default=False)
    fix_within = Duration(load_default=None, allow_none=True)
    escalate_to = fields.List(fields.String(validate=validate.OneOf(
        ("owner", "admin", "manager", "inspector", "agent", "viewer"))), load_default=tuple)
    action_on_failure = fields.Boolean(load_default=False)
    kpi = fields.String(load_default=None, allow_none=True, validate=validate.OneOf(KPI_TAGS))
    rule = fields.Dict(keys=fields.String(), required=True)

    @validates_schema
    def _flags(self, data, **kwargs):
        if data.get("critical") and data.get("bonus"):
            raise ValidationError("an item is either critical or a bonus, not both", "bonus")
        if data.get("kpi") and (data.get("rule") or {}).get("type") != "deadline":
            raise ValidationError("only a deadline item times a response or a resolution", "kpi")


class StandardSchema(Schema):
    """Validates a standard document and loads it as a :class:`Standard`.

    ``StandardSchema(rules=registry)`` checks rule types against ``registry`` (default:
    core's rule types).
    """

    code = fields.String(required=True, validate=CODE)
    version = fields.Integer(required=True, strict=True, validate=validate.Range(min=1))
    title = fields.Nested(TitleSchema, required=True)
    applies_to = fields.List(fields.String(validate=validate.Length(min=1, max=100)),
                             required=True, validate=validate.Length(min=1))
    method = fields.String(required=True, validate=validate.OneOf(tuple(METHODS)))
    pass_mark = fields.Float(required=True, allow_nan=False, validate=validate.Range(min=0, max=100))
    base = fields.Float(load_default=100.0, allow_nan=False,
                        validate=validate.Range(min=0, min_inclusive=False))
    grades = fields.List(fields.Nested(GradeSchema), load_default=list)
    items = fields.List(fields.Nested(ItemSchema), required=True,
                        validate=validate.Length(min=1, max=500))
    replaces = fields.List(fields.String(validate=CODE), load_default=list,
                           validate=validate.Length(max=20))

    def __init__(self, *, rules: RuleRegistry | None = None, **kwargs):
        super().__init__(**kwargs)
        self.rules = default_rules() if rules is None else rules

    @validates_schema
    def _consistent(self, data, **kwargs):
        items = data.get("items") or []
        codes = [item["code"] for item in items]
        repeated = sorted({code for code in codes if codes.count(code) > 1})
        if repeated:
            raise ValidationError(f"item codes appear more than once: {repeated}", "items")
        if data.get("code") in (data.get("replaces") or ()):
            raise ValidationError("a standard cannot replace itself", "replaces")
        if items and not any(item["weight"] > 0 for item in items if not item["bonus"]):
            raise ValidationError("the weights of the items (bonus items aside) add up to 0", "items")
        grades = data.get("grades") or []
        for attribute in ("grade", "min"):
            seen = [getattr(band, attribute) for band in grades]
            if len(set(seen)) != len(seen):
                raise ValidationError(f"two grade bands have the same {attribute}", "grades")
        errors = {}
        for position, item in enumerate(items):
            problem = self._rule_errors(item["rule"])
            if problem:
                errors[position] = {"rule": problem}
        if errors:
            raise ValidationError({"items": errors})

    def _rule_errors(self, rule: Mapping[str, Any]):
        kind = rule.get("type")
        if kind not in self.rules:
            return {"type": [f"unknown rule type {kind!r}; known: {sorted(self.rules)}"]}
        params = {key: value for key, value in rule.items() if key != "type"}
        return self.rules[kind].schema().validate(params) or None

    @post_load
    def _make(self, data, **kwargs):
        items = []
        for item in data["items"]:
            params = {key: value for key, value in item["rule"].items() if key != "type"}
            loaded = self.rules[item["rule"]["type"]].schema().load(params)
            items.append(Item(**{**item, "escalate_to": tuple(item["escalate_to"]),
                                 "rule": Rule(item["rule"]["type"], loaded)}))
        grades = tuple(sorted(data["grades"], key=lambda band: band.min, reverse=True))
        return Standard(**{**data, "applies_to": tuple(data["applies_to"]),
                           "items": tuple(items), "grades": grades,
                           "replaces": tuple(data["replaces"])})


class StandardError(ValueError):
    """A standard document that does not load; ``messages`` says what is wrong where."""

    def __init__(self, source: str, messages: Any):
        super().__init__(f"{source}: {messages}")
        self.source = source
        self.messages = messages


def parse_standard(document: Mapping[str, Any], *, rules: RuleRegistry | None = None,
                   source: str = "<standard>") -> Standard:
    """Validate a standard document (already parsed from TOML/JSON) and load it."""
    try:
        return StandardSchema(rules=rules).load(document)
    except ValidationError as error:
        raise StandardError(source, error.messages) from error


def dump_standard(standard: Standard, *, rules: RuleRegistry | None = None) -> dict[str, Any]:
    """Return ``standard`` as a JSON-safe document that :func:`parse_standard` loads back."""
    registry = default_rules() if rules is None else rules
    items = []
    for item in standard.items:
        rule = {"type": item.rule.type, **registry[item.rule.type].schema().dump(item.rule.params)}
        entry = ItemSchema(exclude=("rule",)).dump(item)
        if entry["fix_within"] is None:
            del entry["fix_within"]
        if not entry["escalate_to"]:
            del entry["escalate_to"]
        if not entry["action_on_failure"]:
            del entry["action_on_failure"]
        if entry.get("kpi") is None:
            entry.pop("kpi", None)
        items.append({**entry, "rule": rule})
    document = StandardSchema(rules=registry, exclude=("items", "grades")).dump(standard)
    if not document.get("replaces"):
        document.pop("replaces", None)
    document["grades"] = [{key: value for key, value in GradeSchema().dump(band).items()
                           if value is not None} for band in standard.grades]
    document["items"] = items
    return document


def read_document(text: str, fmt: str, *, source: str = "<standard>") -> dict[str, Any]:
    """Parse a standard document written in ``fmt`` (``"toml"`` or ``"json"``)."""
    try:
        if fmt == "toml":
            return tomllib.loads(text)
        if fmt == "json":
            document = json.loads(text)
            if not isinstance(document, dict):
                raise StandardError(source, "a standard document is a JSON object")
            return document
    except (tomllib.TOMLDecodeError, json.JSONDecodeError) as error:
        raise StandardError(source, f"not valid {fmt.upper()}: {error}") from error
    raise StandardError(source, f"unknown format {fmt!r}: use .toml or .json")


def load_standard(package: str, resource: str, *, rules: RuleRegistry | None = None) -> Standard:
    """Load the standard file ``resource`` (a path inside ``package``) shipped in a package."""
    source = f"{package}:{resource}"
    node = resources.files(package).joinpath(*resource.split("/"))
    document = read_document(node.read_text(encoding="utf-8"), resource.rsplit(".", 1)[-1].lower(),
                             source=source)
    return parse_standard(document, rules=rules, source=source)


def load_standards(package: str, folder: str = "standards", *,
                   rules: RuleRegistry | None = None) -> list[Standard]:
    """Load every ``*.toml`` and ``*.json`` standard in ``folder`` of ``package``, by name."""
    directory = resources.files(package).joinpath(*folder.split("/"))
    names = sorted(node.name for node in directory.iterdir()
                   if node.is_file() and node.name.rsplit(".", 1)[-1].lower() in ("toml", "json"))
    return [load_standard(package, f"{folder}/{name}", rules=rules) for name in names]
