"""The courier plugin's per-tenant configuration, validated by :class:`CourierConfig`.

Set with ``PUT /api/v1/plugins/courier`` or a manifest's ``[plugins.courier]`` table; the
loaded dictionary (defaults filled in) is stored. Unknown keys are refused (422).

Every number here is a **proposed default** ([P] in INDUSTRIES.md §2): the seeds are silent
on time limits, free attempts, how early a delay notice must be and the appointment window
width, so a tenant overrides them rather than living with constants.

``company_name`` and ``hotline`` fill the blanks of the seed's call script
(``您好。我是____快递公司的`` and ``对快件有疑问请拨打____``): the standards read them as the
placeholders ``<courier.company_name>`` and ``<courier.hotline>``.
"""

from __future__ import annotations

from marshmallow import RAISE, Schema, fields, validate

from servq.plugins.courier.kinds import FAILURE_REASONS, SERVICES

#: Service time limits, counted from ``shipped_at`` (P: 24 h same city, 72 h domestic;
#: GB/T 27917 to verify).
DEFAULT_TIME_LIMITS = {"same_city": "24h", "intra_province": "48h", "domestic": "72h",
                       "international": "168h"}
DEFAULT_FREE_ATTEMPTS = 2
DEFAULT_NOTICE_LEAD_MINUTES = 0
DEFAULT_APPOINTMENT_WINDOW_MINUTES = 120
#: Failure reasons that need a photo (CoopCycle #3813: damaged parcel, photo of the door).
DEFAULT_PHOTO_REQUIRED_ON = {"recipient_absent": True, "damaged": True, "address_inaccessible": True}

LIMIT = validate.Regexp(r"^[1-9][0-9]{0,4}(m|h)$", error="A limit such as '24h' or '90m'.")


class CourierConfig(Schema):
    """Configuration of the ``courier`` plugin for one tenant."""

    class Meta:
        unknown = RAISE
        ordered = True

    company_name = fields.String(load_default=None, allow_none=True, validate=validate.Length(min=1, max=100),
                                 metadata={"description": "Fills the blank of 我是____快递公司的 "
                                                          "(placeholder <courier.company_name>)"})
    hotline = fields.String(load_default=None, allow_none=True, validate=validate.Length(min=3, max=40),
                            metadata={"description": "Customer service number read out on the call "
                                                     "(placeholder <courier.hotline>)"})
    time_limits = fields.Dict(
        keys=fields.String(validate=validate.OneOf(SERVICES)), values=fields.String(validate=LIMIT),
        load_default=lambda: dict(DEFAULT_TIME_LIMITS),
        metadata={"description": "Delivery time limit per service from shipped_at [P]; default "
                                 "same_city 24h, intra_province 48h, domestic 72h, international 168h"})
    free_attempts = fields.Integer(load_default=DEFAULT_FREE_ATTEMPTS, strict=True,
                                   validate=validate.Range(min=1, max=10),
                                   metadata={"description": "Attempts included in the service [P]: 2"})
    notice_lead_minutes = fields.Integer(
        load_default=DEFAULT_NOTICE_LEAD_MINUTES, strict=True, validate=validate.Range(min=0, max=1440),
        metadata={"description": "How long before the appointment window ends a delay notice must "
                                 "come [P]: 0 (any time before the end)"})
    photo_required_on = fields.Dict(
        keys=fields.String(validate=validate.OneOf(FAILURE_REASONS)), values=fields.Boolean(),
        load_default=lambda: dict(DEFAULT_PHOTO_REQUIRED_ON),
        metadata={"description": "Failure reasons whose failed attempt is refused without a photo "
                                 "[P]: recipient_absent, damaged, address_inaccessible"})
    repeat_threshold = fields.Integer(
        load_default=3, strict=True, validate=validate.Range(min=2, max=31),
        metadata={"description": "The same prohibited act by the same courier this many times in a "
                                 "calendar month raises a flag for the station manager (S 当月连续出现"
                                 "三次: 3)"})
    appointment_window_minutes = fields.Integer(
        load_default=DEFAULT_APPOINTMENT_WINDOW_MINUTES, strict=True, validate=validate.Range(min=15, max=1440),
        metadata={"description": "Width of an appointment window when only its start is agreed [P]: 120"})
