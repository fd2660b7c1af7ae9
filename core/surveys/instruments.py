"""Survey instruments: the document format, its validation, and the forms a survey asks in.

An instrument document::

    {"code": "servqual", "version": 1,
     "title": {"en": "...", "zh": "..."}, "description": {"en": "...", "zh": "..."},
     "scale": {"min": 1, "max": 7, "labels": {"1": {"en": "Strongly disagree", ...}, ...}},
     "dimensions": [{"code": "tangibles", "title": {...}, "description": {...}}, ...],
     "items": [{"code": "q1", "dimension": "tangibles", "text": {"en": ..., "zh": ...},
                "reverse": false, "required": true, "scale": {...} (optional),
                "metric": null | "csat" | "nps"}, ...]}

Answers are whole numbers on the item's scale (the item's own ``scale`` or the
instrument's). A reverse-scored item stores ``min + max - answer``. An item with a
``metric`` (``csat``: a 1-5 scale, ``nps``: a 0-10 scale) always takes one answer; every
other item takes the columns of the survey's form.
"""

from __future__ import annotations

import re

from marshmallow import Schema, ValidationError, fields, validate, validates_schema

from servq.core.surveys.servqual import BUILTIN

LANGUAGES = ("en", "zh")

#: The columns each form asks for every item without a metric, in order.
FORMS: dict[str, tuple[str, ...]] = {
    "single": ("perception",),
    "two_column": ("expectation", "perception"),
    "three_column": ("adequate", "desired", "perception"),
}

#: The heading of each column as respondents see it.
COLUMN_LABELS = {
    "expectation": {"en": "Your expectation: the level of service an excellent company would provide",
                    "zh": "您的期望:一家卓越的公司应提供的服务水平"},
    "perception": {"en": "Your perception: the level of service you received",
                   "zh": "您的感知:您实际获得的服务水平"},
    "adequate": {"en": "The minimum level of service you would accept",
                 "zh": "您可以接受的最低服务水平"},
    "desired": {"en": "The level of service you desire", "zh": "您希望得到的服务水平"},
}

IMPORTANCE_PROMPT = {
    "en": "Please allocate a total of 100 points among the following features according to how "
          "important each is to you: the more important, the more points.",
    "zh": "请根据以下各方面对您的重要程度,将总计 100 分分配给它们:越重要,分数越高。",
}

#: Metric items and the scale each needs.
METRIC_SCALES = {"csat": (1, 5), "nps": (0, 10)}

CODE_RE = re.compile(r"^[a-z][a-z0-9_]{0,62}$")
CODE = validate.Regexp(CODE_RE, error="Use 1-63 lowercase letters, digits or '_', starting with a letter.")
SCALE_LIMIT = 100


def texts_required(value: dict) -> None:
    """Validator: a ``{"en", "zh"}`` text needs one language at least."""
    if not any(value.get(lang) for lang in LANGUAGES):
        raise ValidationError("Give the text in English ('en') or Chinese ('zh'), or both.")


class TextSchema(Schema):
    """``{"en": ..., "zh": ...}``: one language at least."""

    en = fields.String(validate=validate.Length(min=1, max=1000))
    zh = fields.String(validate=validate.Length(min=1, max=1000))


def _text(required: bool = True):
    return fields.Nested(TextSchema, required=required, validate=texts_required if required else None)


class ScaleSchema(Schema):
    """A whole-number scale, ``min`` < ``max``, with labels for some of its points."""

    min = fields.Integer(required=True, strict=True, validate=validate.Range(-SCALE_LIMIT, SCALE_LIMIT))
    max = fields.Integer(required=True, strict=True, validate=validate.Range(-SCALE_LIMIT, SCALE_LIMIT))
    labels = fields.Dict(keys=fields.String(), values=fields.Nested(TextSchema), load_default=dict)

    @validates_schema
    def _ordered(self, data, **kwargs):
        if "min" not in data or "max" not in data:
            return
        if data["min"] >= data["max"]:
            raise ValidationError("'min' must be below 'max'.", "max")
        if data["max"] - data["min"] > 100:
            raise ValidationError("A scale has at most 101 points.", "max")
        for key in data.get("labels", {}):
            try:
                point = int(key)
            except ValueError:
                raise ValidationError(f"Label key {key!r} is not a point of the scale.", "labels")
            if str(point) != key or not data["min"] <= point <= data["max"]:
                raise ValidationError(f"Label key {key!r} is not a point of the scale.", "labels")


class DimensionSchema(Schema):
    code = fields.String(required=True, validate=CODE)
    title = _text()
    description = _text(required=False)


class ItemSchema(Schema):
    code = fields.String(required=True, validate=CODE)
    text = _text()
    dimension = fields.String(load_default=None, allow_none=True, validate=CODE)
    reverse = fields.Boolean(load_default=False)
    required = fields.Boolean(load_default=True)
    scale = fields.Nested(ScaleSchema, load_default=None, allow_none=True)
    metric = fields.String(load_default=None, allow_none=True, validate=validate.OneOf(sorted(METRIC_SCALES)))


class InstrumentSchema(Schema):
    """A tenant's own instrument (``POST /api/v1/surveys/instruments``)."""

    code = fields.String(required=True, validate=CODE)
    title = _text()
    description = _text(required=False)
    scale = fields.Nested(ScaleSchema, required=True)
    dimensions = fields.List(fields.Nested(DimensionSchema), load_default=list,
                             validate=validate.Length(max=20))
    items = fields.List(fields.Nested(ItemSchema), required=True, validate=validate.Length(min=1, max=200))

    @validates_schema
    def _consistent(self, data, **kwargs):
        check_document(data)


def check_document(doc: dict) -> None:
    """Cross-field rules of an instrument document; raises ``ValidationError``."""
    dims = [d["code"] for d in doc.get("dimensions", [])]
    if len(set(dims)) != len(dims):
        raise ValidationError("Dimension codes must be unique.", "dimensions")
    codes = [i["code"] for i in doc.get("items", [])]
    if len(set(codes)) != len(codes):
        raise ValidationError("Item codes must be unique.", "items")
    errors: dict = {}
    for n, item in enumerate(doc.get("items", [])):
        problems = []
        if item.get("dimension") and item["dimension"] not in dims:
            problems.append(f"Unknown dimension {item['dimension']!r}; "
                            f"declared: {', '.join(dims) or 'none'}.")
        metric = item.get("metric")
        if metric:
            scale = item.get("scale") or doc.get("scale") or {}
            want = METRIC_SCALES[metric]
            if (scale.get("min"), scale.get("max")) != want:
                problems.append(f"A {metric} item needs the scale {want[0]}-{want[1]}.")
            if item.get("reverse"):
                problems.append(f"A {metric} item cannot be reverse scored.")
            if item.get("dimension"):
                problems.append(f"A {metric} item stands alone: it belongs to no dimension.")
        if problems:
            errors[n] = {"_schema": problems}
    if errors:
        raise ValidationError(errors, "items")


def builtin(code: str) -> dict | None:
    """A built-in instrument's document, or ``None``."""
    return BUILTIN.get(code)


def builtin_instruments() -> list[dict]:
    """Every built-in instrument, by code."""
    return [BUILTIN[code] for code in sorted(BUILTIN)]


def item_scale(doc: dict, item: dict) -> dict:
    """The scale an item is answered on."""
    return item.get("scale") or doc["scale"]


def item_columns(form: str, item: dict) -> tuple[str, ...]:
    """The columns an item takes in ``form``: a metric item always takes one answer."""
    return ("perception",) if item.get("metric") else FORMS[form]


def allowed_forms(doc: dict) -> tuple[str, ...]:
    """The forms a survey of this instrument may use: only ``single`` when every item is
    a metric (CSAT, NPS); not ``three_column`` when an item is reverse scored; any form
    otherwise.

    The three-column form (zone of tolerance) has no reversed reading: the adequate level
    must be at most the desired one and a higher number must mean better service in all
    three columns, which a negatively worded item turns round (on "The company does not
    tell customers when ...", agreeing is the *worse* service, so the minimum a respondent
    accepts is a *higher* number than the level they desire). Reversing each column would
    swap the two ends of the zone, and researchers ask the zone of tolerance with
    positively worded items only (the 1991 SERVQUAL dropped negative wording), so the
    combination is refused.
    """
    if all(item.get("metric") for item in doc["items"]):
        return ("single",)
    if reversed_items(doc):
        return tuple(form for form in FORMS if form != "three_column")
    return tuple(FORMS)


def reversed_items(doc: dict) -> list[str]:
    """The codes of the reverse-scored items of ``doc`` (metric items are never reversed)."""
    return [item["code"] for item in doc["items"] if item.get("reverse") and not item.get("metric")]


def form_refusal(doc: dict, form: str) -> str:
    """Why a survey of ``doc`` cannot be asked in ``form`` (one of :data:`FORMS` that
    :func:`allowed_forms` leaves out), for the 422 message."""
    forms = allowed_forms(doc)
    message = f"This instrument is asked in the {', '.join(forms)} form only."
    if form == "three_column" and reversed_items(doc):
        codes = reversed_items(doc)
        listed = ", ".join(codes[:10]) + (f" and {len(codes) - 10} more" if len(codes) > 10 else "")
        message += (f" The three_column form (adequate, desired, perception) cannot be asked with "
                    f"reverse-scored (negatively worded) items: {listed}. ")
        if doc.get("code") == "servqual":
            message += "Use servqual_1991, the revised wording with every item positive."
        else:
            message += "Word those items positively, or use the two_column or single form."
    return message


def localized(texts: dict | None, language: str) -> str | None:
    """``texts`` in ``language``, falling back to the other language."""
    if not texts:
        return None
    return texts.get(language) or next((texts[lang] for lang in LANGUAGES if texts.get(lang)), None)
