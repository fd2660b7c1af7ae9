"""The ``inspection`` record kind: a check of the service against one of the tenant's standards.

An inspection names the standard it applies (``standard``), how it was done (``mode``:
routine, surprise, special or comprehensive; ``visibility``: open, or ``mystery`` for a
secret mystery-shopper check), who inspected (``inspector_id``, a member of the tenant;
the creator by default) and an answer per item of the standard (``answers``). The
record's own ``site_id`` and ``staff_id`` say where and whom.

The shape of ``data`` is checked here; whether the answers fit the standard (no unknown
item, no required item left out) needs the tenant's standards and is checked by
:func:`core.evaluation.check_record` before the record is written. See ``docs/quality.md``.

Mystery inspections are hidden from the ``agent`` role (the front-line staff they
judge): :func:`hidden_from` gives the SQL condition the record routes add (the rule lives
in :mod:`core.evaluation.visibility`, where the KPIs reach it too).
"""

from __future__ import annotations

import math

from marshmallow import Schema, ValidationError, fields, validate

from servq.core.evaluation.visibility import INSPECTION
from servq.core.plugins import RecordKind, hookimpl
from servq.core.scoring.standard import CODE

KIND = INSPECTION
MODES = ("routine", "surprise", "special", "comprehensive")
VISIBILITIES = ("open", "mystery")
OUTCOMES = ("pass", "fail", "na")


def _answer_value(value) -> None:
    """Validator: a measured or observed value is a finite number, a boolean or a short text."""
    if isinstance(value, bool):
        return
    if isinstance(value, (int, float)):
        if not math.isfinite(value):
            raise ValidationError("Numbers must be finite.")
        return
    if isinstance(value, str):
        if len(value) > 1000:
            raise ValidationError("A text value is at most 1000 characters; use 'text'.")
        return
    raise ValidationError("A value is a number, true/false or a short text.")


class AnswerSchema(Schema):
    """The answer to one item: what the inspector found."""

    outcome = fields.String(validate=validate.OneOf(OUTCOMES),
                            metadata={"description": "pass, fail or na (not applicable)"})
    value = fields.Raw(allow_none=True, validate=_answer_value,
                       metadata={"description": "A measured value (measure items)"})
    count = fields.Integer(strict=True, validate=validate.Range(min=0, max=1_000_000),
                           metadata={"description": "Occurrences (deduction items)"})
    text = fields.String(validate=validate.Length(max=20_000),
                         metadata={"description": "A text to judge (phrases items)"})
    note = fields.String(validate=validate.Length(max=2000))
    evidence = fields.List(fields.Url(validate=validate.Length(max=2000)),
                           validate=validate.Length(max=20),
                           metadata={"description": "Links to photos, recordings, documents"})


class InspectionData(Schema):
    """``data`` of an inspection."""

    standard = fields.String(required=True, validate=CODE,
                             metadata={"description": "Code of one of the tenant's standards "
                                                      "that applies to inspections"})
    mode = fields.String(load_default="routine", validate=validate.OneOf(MODES))
    visibility = fields.String(load_default="open", validate=validate.OneOf(VISIBILITIES))
    inspector_id = fields.UUID(load_default=None, allow_none=True,
                               metadata={"description": "A member of the tenant (default: the creator)"})
    subject_record_id = fields.UUID(load_default=None, allow_none=True, metadata={
        "description": "The record this inspection judges (a manual review of a call, a spot "
                       "check of a delivery or a room): a record of the tenant; it lists this "
                       "review under GET /records/<id>/reviews"})
    answers = fields.Dict(keys=fields.String(validate=CODE), values=fields.Nested(AnswerSchema),
                          load_default=dict, validate=validate.Length(max=500),
                          metadata={"description": "{item code: answer}"})


@hookimpl
def register_record_kinds():
    return [
        RecordKind(
            name=KIND,
            schema=InspectionData,
            title={"en": "Inspection", "zh": "检查"},
            description="A check of the service against one of the tenant's standards: "
                        "routine, surprise, special or comprehensive; open or mystery.",
            statuses=("open", "closed"),
        )
    ]
