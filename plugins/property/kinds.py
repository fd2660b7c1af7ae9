"""The property plugin's record kinds: work orders and facility checks.

``property.work_order`` is an owner's request or repair report (报事报修), taken 24 hours
a day: its workflow stamps each step so the property standard can time it in wall-clock
time (an urgent repair reported at 23:50 on a Sunday is due on site at 00:20)::

    reported ─respond→ responded ─arrive→ on_site ─complete→ completed ─close→ closed
                                           │   ↑                 │             │
                              wait_for_parts   resume            └──reopen→ responded ←─reopen─┘
                                           ↓   │
                                     waiting_for_parts

``report_back`` (from responded, on_site, waiting_for_parts or completed) keeps the status
and stamps ``feedback_at``: the owner was told how the request is being handled. Waiting
for parts pauses the clocks and needs a reason (the seed: a repair delayed to buy parts
must be explained to the owner). The owner's name and phone are personal data: masked
for roles below manager, every clear read audited (core's ``RecordKind.personal``).

``property.facility_check`` is a patrol, test, cleaning or emptying of a shared facility.
Its schema works out the values the facility standard measures (the share of working
lights, of working fire water points, whether a water tank cleaning has its test report,
whether the check found no fault), so the standard's rules read plain fields.

The field, status and stamp names are listed in ``plugins/property/README.md``.
"""

from __future__ import annotations

from typing import Any

from marshmallow import (RAISE, Schema, ValidationError, fields, post_load, validate,
                         validates_schema)

from servq import RecordKind, Transition, Workflow

CHANNELS = ("hotline", "app", "wechat", "walk_in", "email", "patrol")
CATEGORIES = ("elevator", "power", "water", "drainage", "lighting", "fire", "security",
              "cleaning", "other")
PRIORITIES = ("urgent", "normal")
COMPLEXITIES = ("simple", "complex")
WORK_ORDER_STATUSES = ("reported", "responded", "on_site", "waiting_for_parts", "completed",
                       "closed")

FACILITIES = ("fire_equipment", "water_tank", "drainage", "septic_tank", "elevator", "lighting",
              "fire_water")
CHECKS = ("patrol", "test", "cleaning", "emptying", "inspection")
RESULTS = ("ok", "fault")
FACILITY_CHECK_STATUSES = ("recorded", "reviewed")

PHONE = validate.Regexp(r"^\+?[0-9][0-9 ()\-]{2,38}$",
                        error="A phone number: digits, spaces, '-', '(' and ')', optionally starting with '+'.")
COUNT = validate.Range(min=0, max=1_000_000)


def _t(en: str, zh: str) -> dict[str, str]:
    return {"en": en, "zh": zh}


class OwnerSchema(Schema):
    """The owner who reported: personal data, masked for roles without ``personal_data``."""

    class Meta:
        unknown = RAISE

    name = fields.String(validate=validate.Length(max=200))
    phone = fields.String(validate=[validate.Length(max=40), PHONE])


class SignOffSchema(Schema):
    """The owner's sign-off when the work order is closed (验收签字)."""

    class Meta:
        unknown = RAISE

    signed = fields.Boolean(required=True, metadata={"description": "The owner signed the work order off"})
    rating = fields.Integer(load_default=None, allow_none=True, strict=True,
                            validate=validate.Range(min=1, max=5),
                            metadata={"description": "The owner's rating, 1 (poor) to 5 (excellent)"})
    comment = fields.String(load_default="", validate=validate.Length(max=2000))


class WorkOrderData(Schema):
    """``data`` of a ``property.work_order``."""

    class Meta:
        unknown = RAISE

    channel = fields.String(required=True, validate=validate.OneOf(CHANNELS))
    unit = fields.String(required=True, validate=validate.Length(min=1, max=100), metadata={
        "description": "The flat (3-2-1201) or public place (Block 3 lobby) concerned"})
    category = fields.String(required=True, validate=validate.OneOf(CATEGORIES))
    priority = fields.String(load_default="normal", validate=validate.OneOf(PRIORITIES))
    complexity = fields.String(load_default=None, allow_none=True, validate=validate.OneOf(COMPLEXITIES),
                               metadata={"description": "Lighting faults only: simple (fixed within "
                                                        "8 hours) or complex (48 hours); default simple"})
    description = fields.String(required=True, validate=validate.Length(min=1, max=10_000))
    owner = fields.Nested(OwnerSchema, load_default=dict, metadata={
        "description": "Personal data: masked for roles below manager"})
    sign_off = fields.Nested(SignOffSchema, load_default=None, allow_none=True)
    fixed_first_time = fields.Boolean(load_default=None, allow_none=True, metadata={
        "description": "Fixed at the first visit (false once reopened); the first-time-fix KPI reads it"})

    @validates_schema
    def _complexity(self, data: dict[str, Any], **kwargs) -> None:
        if data.get("complexity") is not None and data.get("category") != "lighting":
            raise ValidationError("Only lighting faults are simple or complex.", "complexity")

    @post_load
    def _lighting_default(self, data: dict[str, Any], **kwargs) -> dict[str, Any]:
        if data.get("category") == "lighting" and data.get("complexity") is None:
            data["complexity"] = "simple"
        return data


class FacilityCheckData(Schema):
    """``data`` of a ``property.facility_check``.

    The derived fields (``no_fault``, ``lights_working_percent``,
    ``points_working_percent``, ``test_report_filed``) are worked out on every write; a
    value sent for them is ignored, so a client may send back what it read.
    """

    class Meta:
        unknown = RAISE

    facility = fields.String(required=True, validate=validate.OneOf(FACILITIES))
    check = fields.String(required=True, validate=validate.OneOf(CHECKS))
    result = fields.String(required=True, validate=validate.OneOf(RESULTS))
    test_report_ref = fields.String(load_default=None, allow_none=True,
                                    validate=validate.Length(min=1, max=200), metadata={
                                        "description": "The water test report's reference (water tank cleaning)"})
    lights_total = fields.Integer(load_default=None, allow_none=True, strict=True, validate=COUNT)
    lights_working = fields.Integer(load_default=None, allow_none=True, strict=True, validate=COUNT)
    points_total = fields.Integer(load_default=None, allow_none=True, strict=True, validate=COUNT)
    points_working = fields.Integer(load_default=None, allow_none=True, strict=True, validate=COUNT)
    findings = fields.String(load_default="", validate=validate.Length(max=10_000))
    # Derived: accepted so a record read can be sent back, always recomputed.
    no_fault = fields.Raw(load_default=None, metadata={"description": "Derived: result is ok"})
    lights_working_percent = fields.Raw(load_default=None, metadata={
        "description": "Derived (lighting): share of working lights, in percent"})
    points_working_percent = fields.Raw(load_default=None, metadata={
        "description": "Derived (fire water): share of working fire water points, in percent"})
    test_report_filed = fields.Raw(load_default=None, metadata={
        "description": "Derived (water tank cleaning): the test report is on file"})

    @validates_schema
    def _by_facility(self, data: dict[str, Any], **kwargs) -> None:
        errors: dict[str, list[str]] = {}
        facility = data.get("facility")
        for prefix, owner in (("lights", "lighting"), ("points", "fire_water")):
            total, working = data.get(f"{prefix}_total"), data.get(f"{prefix}_working")
            if facility == owner:
                if total is None:
                    errors[f"{prefix}_total"] = [f"Required for a {owner} check."]
                elif total < 1:
                    errors[f"{prefix}_total"] = ["At least 1."]
                if working is None:
                    errors[f"{prefix}_working"] = [f"Required for a {owner} check."]
                elif total is not None and working > total:
                    errors[f"{prefix}_working"] = [f"At most {prefix}_total ({total})."]
            else:
                for name, value in ((f"{prefix}_total", total), (f"{prefix}_working", working)):
                    if value is not None:
                        errors[name] = [f"Only for a {owner} check."]
        if facility == "water_tank" and data.get("check") == "cleaning" and not data.get("test_report_ref"):
            errors["test_report_ref"] = ["A water tank cleaning needs the test report's reference."]
        if errors:
            raise ValidationError(errors)

    @post_load
    def _derive(self, data: dict[str, Any], **kwargs) -> dict[str, Any]:
        facility = data["facility"]
        data["no_fault"] = data["result"] == "ok"
        data["lights_working_percent"] = _percent(data["lights_working"], data["lights_total"]) \
            if facility == "lighting" else None
        data["points_working_percent"] = _percent(data["points_working"], data["points_total"]) \
            if facility == "fire_water" else None
        data["test_report_filed"] = bool(data.get("test_report_ref")) \
            if facility == "water_tank" and data["check"] == "cleaning" else None
        return data


def _percent(part: int, whole: int) -> float:
    # Not rounded: a standard reading it compares the share itself (2,473 of 2,498 is
    # 98.9992 %, not 99.00 %); round it where it is shown.
    return 100.0 * part / whole


WORK_ORDER_WORKFLOW = Workflow(
    transitions=(
        Transition("respond", ("reported",), "responded", "responded_at",
                   _t("Respond", "响应")),
        Transition("arrive", ("responded",), "on_site", "on_site_at",
                   _t("Arrive on site", "到达现场")),
        # Reporting back to the owner keeps the status: one transition per state it may
        # be taken from, each leading back to that state.
        *(Transition("report_back", (state,), state, "feedback_at",
                     _t("Report back to the owner", "向业主反馈"))
          for state in ("responded", "on_site", "waiting_for_parts", "completed")),
        Transition("wait_for_parts", ("on_site",), "waiting_for_parts", "waiting_at",
                   _t("Wait for parts (owner told of the delay)", "待购配件(已告知业主)"), restamp=True),
        Transition("resume", ("waiting_for_parts",), "on_site", "resumed_at",
                   _t("Resume the repair", "继续维修"), restamp=True),
        Transition("complete", ("on_site",), "completed", "completed_at",
                   _t("Complete", "完工")),
        Transition("close", ("completed",), "closed", "closed_at",
                   _t("Owner signs off: close", "业主验收，关闭")),
        Transition("reopen", ("completed", "closed"), "responded", "reopened_at",
                   _t("Reopen", "返修"), clears=("completed_at", "closed_at"), restamp=True),
    ),
    initial_stamp="reported_at",
    waiting=("waiting_for_parts",),
    final=("closed",),
)


def record_kinds() -> list[RecordKind]:
    """The plugin's record kinds (registered through ``register_record_kinds``)."""
    return [
        RecordKind(
            name="property.work_order",
            schema=WorkOrderData,
            title=_t("Work order", "报事报修"),
            description="An owner's request or repair report, taken 24 hours a day, from report "
                        "to the owner's sign-off; its deadlines run in wall-clock time.",
            statuses=WORK_ORDER_STATUSES,
            workflow=WORK_ORDER_WORKFLOW,
            personal=("owner",),
            first_time_fix="fixed_first_time",
        ),
        RecordKind(
            name="property.facility_check",
            schema=FacilityCheckData,
            title=_t("Facility check", "设施设备巡检"),
            description="A patrol, test, cleaning or emptying of a shared facility: fire equipment, "
                        "water tanks, drainage, septic tanks, elevators, lighting, fire water supply.",
            statuses=FACILITY_CHECK_STATUSES,
        ),
    ]
