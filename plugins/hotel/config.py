"""The hotel plugin's per-tenant configuration, validated by :class:`HotelConfig`.

Set with ``PUT /api/v1/plugins/hotel`` or a manifest's ``[plugins.hotel]`` table. Every
value has a default: the seed's numbers ([S]: carpet burn 50 CNY per hole, a full tea
refill every 15 minutes, offices ready by 08:30) and proposed ones ([P]). Unknown keys
are refused (422 naming them).
"""

from __future__ import annotations

import re
from typing import Any

from marshmallow import RAISE, Schema, ValidationError, fields, validate, validates

from servq import INSTRUMENT_CODE_RE as CODE_RE

ITEM_CODE = validate.Regexp(r"^[a-z][a-z0-9_]{0,62}$", error="A code: lowercase letters, digits or '_'.")
#: [S] 000 服务过程管理·引例: 每个焦痕赔50元.
DEFAULT_PRICE_LIST = {"carpet_burn": {"title": {"en": "Carpet burn (per hole)", "zh": "地毯烟洞(每个)"},
                                      "unit": "hole", "price": 50, "currency": "CNY"}}
DEFAULT_OUTLETS = ("room", "front_desk", "restaurant", "meeting", "spa")
DEFAULT_CADENCE = {"attendant": 1}
HHMM = re.compile(r"^([01][0-9]|2[0-3]):[0-5][0-9]$")


class TitleSchema(Schema):
    class Meta:
        unknown = RAISE

    en = fields.String(required=True, validate=validate.Length(min=1, max=200))
    zh = fields.String(required=True, validate=validate.Length(min=1, max=200))


class PriceSchema(Schema):
    class Meta:
        unknown = RAISE

    title = fields.Nested(TitleSchema, required=True)
    unit = fields.String(load_default="item", validate=validate.Length(min=1, max=30))
    price = fields.Float(required=True, validate=validate.Range(min=0, max=1e7))
    currency = fields.String(load_default="CNY", validate=validate.Regexp(r"^[A-Z]{3}$", error="An ISO 4217 code."))


class HotelConfig(Schema):
    """Configuration of the ``hotel`` plugin for one tenant."""

    class Meta:
        unknown = RAISE
        ordered = True

    damage_price_list = fields.Dict(
        keys=fields.String(validate=ITEM_CODE), values=fields.Nested(PriceSchema),
        load_default=lambda: {k: dict(v) for k, v in DEFAULT_PRICE_LIST.items()},
        metadata={"description": "Damage price list {code: {title, unit, price, currency}}; "
                                 "default only carpet_burn 50 CNY per hole [S]"})
    refill_interval_minutes = fields.Integer(
        load_default=15, strict=True, validate=validate.Range(min=1, max=240),
        metadata={"description": "Largest gap between full tea rounds; default 15 [S]"})
    office_ready_by = fields.String(
        load_default="08:30", validate=validate.Regexp(HHMM, error="A local time HH:MM."),
        metadata={"description": "Offices done before this local time; default 08:30 [S]"})
    inspection_cadence = fields.Dict(
        keys=fields.String(validate=validate.Length(min=1, max=50)),
        values=fields.Integer(strict=True, validate=validate.Range(min=0, max=100)),
        load_default=lambda: dict(DEFAULT_CADENCE),
        metadata={"description": "Rooms inspected per role: 0 none (self-check), 1 every room, "
                                 "N every Nth [P]"})
    outlets = fields.List(fields.String(validate=ITEM_CODE), load_default=lambda: list(DEFAULT_OUTLETS),
                          validate=validate.Length(min=1, max=30))
    meeting_rooms = fields.List(fields.String(validate=validate.Length(min=1, max=100)), load_default=list,
                                validate=validate.Length(max=100), metadata={
                                    "description": "Meeting rooms given weekly teaware disinfection, "
                                                   "weekly deep cleaning and daily cleaning schedules"})
    checkout_inspection_minutes = fields.Integer(load_default=5, strict=True,
                                                 validate=validate.Range(min=1, max=120),
                                                 metadata={"description": "Default 5 [P]"})
    daily_inspections_per_manager = fields.Integer(
        load_default=3, strict=True, validate=validate.Range(min=0, max=100),
        metadata={"description": "Daily appraisal records (逐日考核记录): inspections each staff member "
                                 "linked to a manager user files every working day; 0 turns it off. "
                                 "Default 3 [P]"})
    guest_comment_survey = fields.String(
        load_default="csat", validate=validate.Regexp(CODE_RE, error="An instrument code."),
        metadata={"description": "Instrument of the guest comment form; default csat"})

    @validates("outlets")
    def _distinct(self, value: list[str], **kwargs) -> None:
        if len(set(value)) != len(value):
            raise ValidationError("Each outlet may appear once.")


def price_of(config: dict[str, Any], code: str) -> dict[str, Any] | None:
    return (config.get("damage_price_list") or {}).get(code)
