"""The ``observation`` record kind: anything noticed about the service, by anyone."""

from __future__ import annotations

from marshmallow import Schema, fields, validate

from servq.core.plugins import RecordKind, hookimpl

SEVERITIES = ("low", "medium", "high", "critical")


class ObservationData(Schema):
    """``data`` of an observation."""

    title = fields.String(required=True, validate=validate.Length(min=1, max=200))
    description = fields.String(load_default="", validate=validate.Length(max=10_000))
    severity = fields.String(load_default="low", validate=validate.OneOf(SEVERITIES))
    tags = fields.List(fields.String(validate=validate.Length(min=1, max=50)),
                       load_default=list, validate=validate.Length(max=20))


@hookimpl
def register_record_kinds():
    return [
        RecordKind(
            name="observation",
            schema=ObservationData,
            title={"en": "Observation", "zh": "观察记录"},
            description="Something noticed about the service: a finding, a praise, a hazard.",
            statuses=("open", "closed"),
        )
    ]
