"""A minimal plugin for tests/test_phrases_speech.py: a ``calls.call`` record kind whose
``data`` holds a transcript of speaker turns, and a configuration with a hotline.

Loaded as the plugin ``calls`` by that test module's ``app_config`` fixture.
"""

from __future__ import annotations

from marshmallow import Schema, fields, validate

from servq.core.plugins import RecordKind, hookimpl


class Turn(Schema):
    speaker = fields.String(required=True, validate=validate.OneOf(("agent", "customer")))
    text = fields.String(required=True, validate=validate.Length(max=2000))


class CallData(Schema):
    transcript = fields.List(fields.Nested(Turn), load_default=list)
    note = fields.String(load_default="")


class CallsConfig(Schema):
    hotline = fields.String(validate=validate.Length(min=1, max=40))
    placeholders = fields.Dict(keys=fields.String(), values=fields.String(), load_default=dict)


@hookimpl
def register_record_kinds():
    return [RecordKind(name="calls.call", schema=CallData,
                       title={"en": "Call", "zh": "通话"},
                       description="A recorded call, as a transcript of turns.",
                       statuses=("open", "closed"))]


@hookimpl
def register_config_schema():
    return CallsConfig
