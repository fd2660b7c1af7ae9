"""The after-sales plugin's per-tenant configuration, validated by :class:`AftersalesConfig`.

Set with ``PUT /api/v1/plugins/aftersales`` or a manifest's ``[plugins.aftersales]`` table.
Every number here is a PROPOSED DEFAULT (the seeds are silent on them, INDUSTRIES.md §6);
the onboarding writes the targets into the tenant's standards (an override, a new version,
only when they differ), so the standards stay the one place scores are read from.
"""

from __future__ import annotations

import re

from marshmallow import (
    RAISE,
    Schema,
    ValidationError,
    fields,
    validate,
    validates_schema,
)

PRIORITY_KEYS = ("p1", "p2", "p3", "p4")
#: Response limits per priority (受理): urgent 30 min echoes the property seed (急修30分钟).
DEFAULT_RESPONSE = {"p1": "30m", "p2": "2 working hours", "p3": "4 working hours", "p4": "1 working day"}
#: Resolution limits per priority (解决): the seeds say only "within the set time".
DEFAULT_RESOLUTION = {"p1": "24h", "p2": "2 working days", "p3": "5 working days", "p4": "10 working days"}
DEFAULT_SPEECH_BAND = (150, 260)
DEFAULT_REVIEWS_PER_AGENT = 5
DEFAULT_REPEAT_DAYS = 30
DEFAULT_SCRIPTS = {"opening_greeting": "您好", "opening_offer": "很高兴为您服务",
                   "closing_thanks": "感谢您的来电", "closing_goodbye": "再见"}

_LIMIT_RE = re.compile(r"^\s*\d+(\.\d+)?\s*(m|h|d|minutes?|hours?|days?|working (hours?|days?|minutes?))\s*$")


def _limits(value: dict) -> None:
    if set(value) != set(PRIORITY_KEYS):
        raise ValidationError(f"Give each of {', '.join(PRIORITY_KEYS)}.")
    bad = [key for key, text in value.items() if not isinstance(text, str) or not _LIMIT_RE.match(text)]
    if bad:
        raise ValidationError({key: ["A limit such as '30m', '24h' or '2 working days'."] for key in bad})


class PriorityTargets(Schema):
    class Meta:
        unknown = RAISE

    response = fields.Dict(keys=fields.String(), values=fields.String(),
                           load_default=lambda: dict(DEFAULT_RESPONSE), validate=_limits)
    resolution = fields.Dict(keys=fields.String(), values=fields.String(),
                             load_default=lambda: dict(DEFAULT_RESOLUTION), validate=_limits)


class AftersalesConfig(Schema):
    """Configuration of the ``aftersales`` plugin for one tenant."""

    class Meta:
        unknown = RAISE
        ordered = True

    priority_targets = fields.Nested(PriorityTargets, load_default=lambda: PriorityTargets().load({}),
                                     metadata={"description": "Response and resolution limits per priority "
                                                              "(p1..p4); defaults proposed, not from a seed"})
    opening_greeting = fields.String(load_default=DEFAULT_SCRIPTS["opening_greeting"],
                                     validate=validate.Length(min=1, max=100),
                                     metadata={"description": "Opening script, first part (<aftersales.opening_greeting>)"})
    opening_offer = fields.String(load_default=DEFAULT_SCRIPTS["opening_offer"],
                                  validate=validate.Length(min=1, max=100),
                                  metadata={"description": "Opening script, second part"})
    closing_thanks = fields.String(load_default=DEFAULT_SCRIPTS["closing_thanks"],
                                   validate=validate.Length(min=1, max=100),
                                   metadata={"description": "Closing script, first part"})
    closing_goodbye = fields.String(load_default=DEFAULT_SCRIPTS["closing_goodbye"],
                                    validate=validate.Length(min=1, max=100),
                                    metadata={"description": "Closing script, second part"})
    speech_rate_min = fields.Integer(load_default=DEFAULT_SPEECH_BAND[0], strict=True,
                                     validate=validate.Range(min=30, max=600),
                                     metadata={"description": "Slowest acceptable agent speech (characters/minute)"})
    speech_rate_max = fields.Integer(load_default=DEFAULT_SPEECH_BAND[1], strict=True,
                                     validate=validate.Range(min=30, max=600),
                                     metadata={"description": "Fastest acceptable agent speech (characters/minute)"})
    reviews_per_agent = fields.Integer(load_default=DEFAULT_REVIEWS_PER_AGENT, strict=True,
                                       validate=validate.Range(min=0, max=1000),
                                       metadata={"description": "Manual call reviews per agent per month (0: no quota)"})
    repeat_contact_days = fields.Integer(load_default=DEFAULT_REPEAT_DAYS, strict=True,
                                         validate=validate.Range(min=1, max=365),
                                         metadata={"description": "A new ticket about the same serial number "
                                                                  "within this many days marks the earlier one "
                                                                  "a repeat contact"})

    @validates_schema
    def _band(self, data, **kwargs):
        if data.get("speech_rate_min", 0) >= data.get("speech_rate_max", 10**6):
            raise ValidationError("Must be above speech_rate_min.", "speech_rate_max")
