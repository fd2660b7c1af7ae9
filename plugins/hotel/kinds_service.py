"""The hotel plugin's service kinds: meetings, offices, recurring housekeeping, the kitchen
pass and repairs.

* ``hotel.meeting_service`` (会议服务): ``max_refill_gap_minutes`` is the largest gap in
  ``[start_at, *refills, end_at]`` (refills outside the meeting are ignored), so a
  meeting whose tea was refilled every 15 minutes measures 15.
* ``hotel.office_service`` (领导办公室服务): one day's service of one office; the record's
  ``occurred_at`` is on the service day (local), its ``completed_at`` must be before
  08:30 local (the standard's ``due_time``).
* ``hotel.housekeeping_task``: what the weekly and daily schedules expect.
* ``hotel.dish_check`` (菜点出品): the kitchen gate. A rejected dish marked served is a
  422 (``不合格的菜点,决不出厨房``); ``serve`` is refused (409) unless the dish passed.
* ``hotel.repair``: opened by the plugin from a maintenance defect.
"""

from __future__ import annotations

from datetime import datetime
from itertools import pairwise
from typing import Any

from marshmallow import (
    RAISE,
    Schema,
    ValidationError,
    fields,
    post_load,
    validate,
    validates_schema,
)

from servq import RecordKind, Transition, Workflow
from servq.plugins.hotel.kinds import TEXT, _t

MEETING_STATUSES = ("booked", "prepared", "in_progress", "ended", "closed")
OFFICE_STATUSES = ("scheduled", "done")
TASK_STATUSES = ("recorded", "reviewed")
DISH_STATUSES = ("checked", "served", "rejected")
REPAIR_STATUSES = ("reported", "dispatched", "on_site", "waiting_for_parts", "fixed", "verified")
TASKS = ("teaware_disinfection", "deep_clean", "daily_clean", "vacuum", "follow_up_visit")
FACILITIES = ("lamp", "switch", "tap", "cistern", "water_dispenser", "tv", "air_conditioning", "other")
GATE_MESSAGE = "A rejected dish never leaves the kitchen (不合格的菜点,决不出厨房): it cannot be served."


class CloseDownSchema(Schema):
    class Meta:
        unknown = RAISE

    teaware_cleared = fields.Boolean(load_default=None, allow_none=True)
    tables_tidied = fields.Boolean(load_default=None, allow_none=True)
    lights_off = fields.Boolean(load_default=None, allow_none=True)
    ac_off = fields.Boolean(load_default=None, allow_none=True)


class MeetingServiceData(Schema):
    class Meta:
        unknown = RAISE

    meeting_room = fields.String(required=True, validate=validate.Length(min=1, max=100))
    title = fields.String(load_default="", validate=validate.Length(max=300))
    host_unit = fields.String(load_default=None, allow_none=True, validate=validate.Length(max=200))
    start_at = fields.AwareDateTime(load_default=None, allow_none=True)
    end_at = fields.AwareDateTime(load_default=None, allow_none=True)
    attendees = fields.Integer(load_default=None, allow_none=True, strict=True,
                               validate=validate.Range(min=1, max=10_000))
    head_table = fields.Boolean(load_default=None, allow_none=True)
    refills = fields.List(fields.AwareDateTime(), load_default=list, validate=validate.Length(max=200),
                          metadata={"description": "When each full round of tea was poured"})
    tea_order_followed = fields.Boolean(load_default=None, allow_none=True)
    served_from_right = fields.Boolean(load_default=None, allow_none=True)
    appearance_ok = fields.Boolean(load_default=None, allow_none=True)
    smile_polite = fields.Boolean(load_default=None, allow_none=True)
    unmet_requests = fields.Integer(load_default=None, allow_none=True, strict=True,
                                    validate=validate.Range(min=0, max=1000))
    closedown = fields.Nested(CloseDownSchema, load_default=dict)
    max_refill_gap_minutes = fields.Raw(load_default=None, metadata={
        "description": "Derived: the largest gap between start, each refill and end"})
    refill_rounds = fields.Raw(load_default=None, metadata={"description": "Derived"})
    lights_ac_off = fields.Raw(load_default=None, metadata={"description": "Derived: lights and air-con off"})

    @validates_schema
    def _times(self, data: dict[str, Any], **kwargs) -> None:
        if data.get("start_at") and data.get("end_at") and data["end_at"] <= data["start_at"]:
            raise ValidationError("The meeting ends after it starts.", "end_at")

    @post_load
    def _derive(self, data: dict[str, Any], **kwargs) -> dict[str, Any]:
        start, end = data.get("start_at"), data.get("end_at")
        refills = sorted(data.get("refills") or [])
        data["refills"] = refills
        data["refill_rounds"] = len(refills)
        data["max_refill_gap_minutes"] = max_gap(start, end, refills)
        closedown = data.get("closedown") or {}
        lights, ac = closedown.get("lights_off"), closedown.get("ac_off")
        data["lights_ac_off"] = None if lights is None and ac is None else bool(lights and ac)
        return data


def max_gap(start: datetime | None, end: datetime | None, refills: list[datetime]) -> float | None:
    """The largest gap in minutes in ``[start, *refills within it, end]``; ``None`` until
    both ends are known."""
    if start is None or end is None:
        return None
    points = [start, *(r for r in refills if start < r < end), end]
    gap = max((b - a).total_seconds() for a, b in pairwise(points))
    return round(gap / 60, 2)


class OfficeTasksSchema(Schema):
    class Meta:
        unknown = RAISE

    surfaces = fields.Boolean(load_default=None, allow_none=True)
    fixtures = fields.Boolean(load_default=None, allow_none=True)
    plants_bins = fields.Boolean(load_default=None, allow_none=True)
    floor_vacuumed = fields.Boolean(load_default=None, allow_none=True, metadata={
        "description": "About weekly; null (n.a.) on other days"})
    basin_counter = fields.Boolean(load_default=None, allow_none=True)
    toilet = fields.Boolean(load_default=None, allow_none=True)
    floor_mopped = fields.Boolean(load_default=None, allow_none=True)
    toilet_paper = fields.Boolean(load_default=None, allow_none=True)
    facilities_checked = fields.Boolean(load_default=None, allow_none=True)


class FaultSchema(Schema):
    class Meta:
        unknown = RAISE

    facility = fields.String(required=True, validate=validate.OneOf(FACILITIES))
    description = fields.String(load_default="", validate=TEXT)
    repair_id = fields.String(load_default=None, allow_none=True, metadata={"description": "Set by the plugin"})


def _all_or_none(*values: Any) -> bool | None:
    known = [v for v in values if v is not None]
    return all(known) if known else None


class OfficeServiceData(Schema):
    class Meta:
        unknown = RAISE

    room = fields.String(required=True, validate=validate.Length(min=1, max=100))
    service_date = fields.Date(load_default=None, allow_none=True)
    tasks = fields.Nested(OfficeTasksSchema, load_default=dict)
    faults = fields.List(fields.Nested(FaultSchema), load_default=list, validate=validate.Length(max=50))
    # Derived: the items of hotel.office_service.
    surfaces_clean = fields.Raw(load_default=None)
    fixtures_wiped = fields.Raw(load_default=None)
    plants_bins_floor = fields.Raw(load_default=None)
    bathroom_clean = fields.Raw(load_default=None)
    toilet_paper = fields.Raw(load_default=None)
    facilities_working = fields.Raw(load_default=None)
    faults_dispatched = fields.Raw(load_default=None)

    @post_load
    def _derive(self, data: dict[str, Any], **kwargs) -> dict[str, Any]:
        tasks = data.get("tasks") or {}
        faults = data.get("faults") or []
        data["surfaces_clean"] = tasks.get("surfaces")
        data["fixtures_wiped"] = tasks.get("fixtures")
        data["plants_bins_floor"] = _all_or_none(tasks.get("plants_bins"), tasks.get("floor_vacuumed"))
        data["bathroom_clean"] = _all_or_none(tasks.get("basin_counter"), tasks.get("toilet"),
                                              tasks.get("floor_mopped"))
        data["toilet_paper"] = tasks.get("toilet_paper")
        data["facilities_working"] = (not faults) if tasks.get("facilities_checked") else None
        data["faults_dispatched"] = all(f.get("repair_id") for f in faults) if faults else None
        return data


class HousekeepingTaskData(Schema):
    class Meta:
        unknown = RAISE

    area = fields.String(required=True, validate=validate.Length(min=1, max=100), metadata={
        "description": "meeting_room, office, … or the room's name"})
    task = fields.String(required=True, validate=validate.OneOf(TASKS))
    result = fields.String(load_default="ok", validate=validate.OneOf(("ok", "fault")))
    no_dead_corners = fields.Boolean(load_default=None, allow_none=True)
    findings = fields.String(load_default="", validate=validate.Length(max=5000))
    task_ok = fields.Raw(load_default=None, metadata={"description": "Derived: result is ok"})
    teaware_ok = fields.Raw(load_default=None, metadata={
        "description": "Derived: a teaware disinfection is ok (null for other tasks)"})

    @post_load
    def _derive(self, data: dict[str, Any], **kwargs) -> dict[str, Any]:
        data["task_ok"] = data["result"] == "ok"
        data["teaware_ok"] = data["task_ok"] if data["task"] == "teaware_disinfection" else None
        return data


class DishCheckData(Schema):
    class Meta:
        unknown = RAISE

    outlet = fields.String(required=True, validate=validate.Length(min=1, max=100))
    dish = fields.String(required=True, validate=validate.Length(min=1, max=200))
    order_ref = fields.String(load_default=None, allow_none=True, validate=validate.Length(max=100))
    hygiene_ok = fields.Boolean(load_default=None, allow_none=True)
    served_hot = fields.Boolean(load_default=None, allow_none=True)
    presentation_ok = fields.Boolean(load_default=None, allow_none=True)
    expired_ingredients = fields.Boolean(load_default=False)
    result = fields.String(required=True, validate=validate.OneOf(("pass", "reject")))
    reject_reason = fields.String(load_default=None, allow_none=True, validate=TEXT)
    served = fields.Boolean(load_default=False)
    rejected_not_served = fields.Raw(load_default=None, metadata={
        "description": "Derived: a rejected dish stayed in the kitchen (null for a passed one)"})
    no_expired_food = fields.Raw(load_default=None, metadata={"description": "Derived"})

    @validates_schema
    def _gate(self, data: dict[str, Any], **kwargs) -> None:
        if data.get("result") == "reject" and data.get("served"):
            raise ValidationError(GATE_MESSAGE, "served")
        if data.get("result") == "reject" and not data.get("reject_reason"):
            raise ValidationError("Say why the dish was rejected.", "reject_reason")

    @post_load
    def _derive(self, data: dict[str, Any], **kwargs) -> dict[str, Any]:
        data["rejected_not_served"] = True if data["result"] == "reject" else None
        data["no_expired_food"] = not data.get("expired_ingredients")
        return data


class RepairData(Schema):
    class Meta:
        unknown = RAISE

    room_or_area = fields.String(required=True, validate=validate.Length(min=1, max=100))
    facility = fields.String(load_default="other", validate=validate.OneOf(FACILITIES))
    description = fields.String(required=True, validate=validate.Length(min=1, max=5000))
    priority = fields.String(load_default="normal", validate=validate.OneOf(("urgent", "normal")))
    source_record_id = fields.UUID(load_default=None, allow_none=True)


MEETING_WORKFLOW = Workflow(
    transitions=(
        Transition("prepare", ("booked",), "prepared", "prepared_at", _t("Prepared", "会前准备就绪")),
        Transition("start", ("prepared",), "in_progress", "started_at", _t("Meeting starts", "会议开始")),
        Transition("end", ("in_progress",), "ended", "ended_at", _t("Meeting ends", "会议结束")),
        Transition("close_down", ("ended",), "closed", "closed_at", _t("Closed down", "会后整理完毕")),
    ),
    initial_stamp="booked_at",
    final=("closed",),
)
OFFICE_WORKFLOW = Workflow(
    transitions=(Transition("complete", ("scheduled",), "done", "completed_at", _t("Done", "完成")),),
    initial_stamp="scheduled_at", final=("done",),
)
DISH_WORKFLOW = Workflow(
    transitions=(
        Transition("serve", ("checked",), "served", "served_at", _t("Serve", "出品"),
                   requires={"result": ["pass"]}),
        Transition("reject", ("checked",), "rejected", "rejected_at", _t("Reject: back to the kitchen", "退回厨房"),
                   requires={"result": ["reject"]}),
    ),
    initial_stamp="checked_at", final=("served", "rejected"),
)
REPAIR_WORKFLOW = Workflow(
    transitions=(
        Transition("dispatch", ("reported",), "dispatched", "dispatched_at", _t("Dispatch", "派修")),
        Transition("arrive", ("dispatched",), "on_site", "on_site_at", _t("On site", "到达现场")),
        Transition("wait_for_parts", ("on_site",), "waiting_for_parts", "waiting_at",
                   _t("Wait for parts", "待购配件"), restamp=True),
        Transition("resume", ("waiting_for_parts",), "on_site", "resumed_at", _t("Resume", "继续维修"),
                   restamp=True),
        Transition("fix", ("on_site",), "fixed", "fixed_at", _t("Fixed", "修复")),
        Transition("verify", ("fixed",), "verified", "verified_at", _t("Verified", "验收")),
    ),
    initial_stamp="reported_at", waiting=("waiting_for_parts",), final=("verified",),
)


def service_kinds() -> list[RecordKind]:
    return [
        RecordKind(name="hotel.meeting_service", schema=MeetingServiceData,
                   title=_t("Meeting service", "会议服务"),
                   description="One meeting served: preparation, tea rounds every 15 minutes, close-down.",
                   statuses=MEETING_STATUSES, workflow=MEETING_WORKFLOW),
        RecordKind(name="hotel.office_service", schema=OfficeServiceData,
                   title=_t("Office service", "领导办公室服务"),
                   description="One day's cleaning of one office, done before 08:30.",
                   statuses=OFFICE_STATUSES, workflow=OFFICE_WORKFLOW),
        RecordKind(name="hotel.housekeeping_task", schema=HousekeepingTaskData,
                   title=_t("Housekeeping task", "周期性保洁任务"),
                   description="A recurring task: weekly teaware disinfection and deep cleaning, "
                               "daily cleaning, follow-up visits.",
                   statuses=TASK_STATUSES),
        RecordKind(name="hotel.dish_check", schema=DishCheckData,
                   title=_t("Dish check", "菜点出品检查"),
                   description="The kitchen pass: a rejected dish is never served.",
                   statuses=DISH_STATUSES, workflow=DISH_WORKFLOW),
        RecordKind(name="hotel.repair", schema=RepairData, title=_t("Repair", "客房/设施报修"),
                   description="A repair, opened from a maintenance defect found while cleaning.",
                   statuses=REPAIR_STATUSES, workflow=REPAIR_WORKFLOW, links=("source_record_id",)),
    ]
