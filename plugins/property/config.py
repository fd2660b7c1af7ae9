"""The property plugin's per-tenant configuration, validated by :class:`PropertyConfig`.

Set with ``PUT /api/v1/plugins/property`` (``{"active": true, "configuration": {...}}``)
or a manifest's ``[plugins.property]`` table; the loaded dictionary, defaults filled in,
is what ``tenant_plugins.configuration`` stores. Unknown keys are refused (422 naming
them), so a misspelt setting never passes silently.
"""

from __future__ import annotations

from typing import Any

from marshmallow import RAISE, Schema, ValidationError, fields, validate, validates

from servq import INSTRUMENT_CODE_RE as CODE_RE
from servq.plugins.property.kinds import CATEGORIES

#: Categories whose faults the standard gives 30 minutes to reach (seed 002: elevator,
#: power and water faults handled within 30 minutes).
DEFAULT_FACILITY_FAULT_CATEGORIES = ("elevator", "power", "water")
#: The owner satisfaction survey asked every half year; ``servqual`` shows the gap per
#: dimension, ``csat`` is the one-question alternative (both built in, core/surveys).
DEFAULT_SATISFACTION_SURVEY = "servqual"
#: The months the owner satisfaction survey goes out: every half year.
DEFAULT_SURVEY_MONTHS = (6, 12)


def _distinct(values: list[Any]) -> None:
    if len(set(values)) != len(values):
        raise ValidationError("Each value may appear once.")


class PropertyConfig(Schema):
    """Configuration of the ``property`` plugin for one tenant."""

    class Meta:
        unknown = RAISE
        ordered = True

    facility_fault_categories = fields.List(
        fields.String(validate=validate.OneOf(CATEGORIES)),
        load_default=lambda: list(DEFAULT_FACILITY_FAULT_CATEGORIES),
        validate=[validate.Length(min=1), _distinct],
        metadata={"description": "Work order categories that count as facility faults (on site "
                                 "within 30 minutes); default elevator, power, water"})
    satisfaction_survey = fields.String(
        load_default=DEFAULT_SATISFACTION_SURVEY,
        validate=validate.Regexp(CODE_RE, error="An instrument code: 1-63 lowercase letters, digits "
                                                "or '_', starting with a letter."),
        metadata={"description": "Code of the survey instrument of the owner satisfaction survey: "
                                 "a built-in one (servqual, servqual_1991, csat, nps) or one of the "
                                 "tenant's own; default servqual"})
    survey_months = fields.List(
        fields.Integer(strict=True, validate=validate.Range(min=1, max=12)),
        load_default=lambda: list(DEFAULT_SURVEY_MONTHS),
        validate=[validate.Length(min=1, max=12), _distinct],
        metadata={"description": "Months (1-12) in which the owner satisfaction survey goes out; "
                                 "default [6, 12] (every half year)"})

    @validates("survey_months")
    def _sorted(self, value: list[int], **kwargs) -> None:
        if value != sorted(value):
            raise ValidationError("List the months in calendar order.")
