"""The hotel plugin's room kinds: a room's turnover (cleaning and inspection) and the
room check at check-out with its damage charges.

``hotel.room_turnover`` is one cleaning of one room and its inspection::

    dirty ─start→ cleaning ─finish→ cleaned ─pass→ inspected (final)
      ↑  ↑                            │
      │  └──────────fail (reason)─────┘      dirty|cleaning ─dnd→ dnd ─resume→ dirty
      └─release── blocked ←block─ dirty            cleaned ─self_check→ inspected

``self_check`` is open only to attendants whose role has inspection cadence 0
(``HotelConfig.inspection_cadence``: the role is a word of the staff member's title).

A failed inspection sends the room back to ``dirty`` and stamps ``failed_at`` the first
time only: the room was not right first time (``passed_first_time`` false, worked out by
the plugin's hook from the stamps, so a client cannot set it). ``dnd`` (请勿打扰/拒绝服务)
and ``blocked`` (维修房) are waiting states: they pause the clocks and need a reason.
A maintenance defect found while cleaning opens exactly one ``hotel.repair`` (the hook
writes its id on the defect); ``faults_dispatched`` is then true.

``hotel.checkout_inspection`` is the room check when a guest checks out. Each damage line
names a code of the tenant's price list (``HotelConfig.damage_price_list``); the hook
copies the list price in force onto the line (``list_price``), so a later change of the
list never alters a charge already made. ``evidence_complete`` says every line has
evidence or a witness (the seed: ``凭什么说这是我们烫的``)."""

from __future__ import annotations

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

CLEAN_TYPES = ("departure", "stayover", "touch_up", "turndown", "deep")
PRIORITIES = ("normal", "arrival", "vip", "early_checkin")
CHECK_ANSWERS = ("pass", "fail", "na")
DEFECT_KINDS = ("housekeeping", "maintenance")
TURNOVER_STATUSES = ("dirty", "cleaning", "cleaned", "inspected", "dnd", "blocked")
CHECKOUT_STATUSES = ("requested", "clear", "damage_found", "charge_proposed", "charged", "disputed",
                     "waived")
GUEST_RESPONSES = ("accepted", "disputed")
CODE = validate.Regexp(r"^[a-z][a-z0-9_]{0,62}$", error="A code: lowercase letters, digits or '_'.")
TEXT = validate.Length(max=2000)
URLS = fields.List(fields.Url(validate=validate.Length(max=2000)), load_default=list,
                   validate=validate.Length(max=20))


def _t(en: str, zh: str) -> dict[str, str]:
    return {"en": en, "zh": zh}


class DefectSchema(Schema):
    class Meta:
        unknown = RAISE

    area = fields.String(required=True, validate=validate.Length(min=1, max=100))
    description = fields.String(required=True, validate=validate.Length(min=1, max=2000))
    kind = fields.String(required=True, validate=validate.OneOf(DEFECT_KINDS), metadata={
        "description": "housekeeping (re-clean) or maintenance (opens a hotel.repair)"})
    evidence = URLS
    repair_id = fields.String(load_default=None, allow_none=True, metadata={
        "description": "Set by the plugin: the hotel.repair this maintenance defect opened"})


class FoundItemSchema(Schema):
    class Meta:
        unknown = RAISE

    item = fields.String(required=True, validate=validate.Length(min=1, max=200))
    where = fields.String(load_default="", validate=validate.Length(max=200))


class RoomTurnoverData(Schema):
    """``data`` of a ``hotel.room_turnover``; derived fields are recomputed on every write."""

    class Meta:
        unknown = RAISE

    room = fields.String(required=True, validate=validate.Length(min=1, max=20))
    floor = fields.Integer(load_default=None, allow_none=True, strict=True)
    room_type = fields.String(load_default=None, allow_none=True, validate=validate.Length(max=50))
    clean_type = fields.String(load_default="departure", validate=validate.OneOf(CLEAN_TYPES))
    priority = fields.String(load_default="normal", validate=validate.OneOf(PRIORITIES))
    guest_arrival_at = fields.AwareDateTime(load_default=None, allow_none=True, metadata={
        "description": "The next guest's arrival: the room must be inspected before it"})
    inspector_id = fields.UUID(load_default=None, allow_none=True)
    checklist = fields.Dict(keys=fields.String(validate=CODE),
                            values=fields.String(validate=validate.OneOf(CHECK_ANSWERS)),
                            load_default=dict, metadata={
                                "description": "pass/fail/na per item code of hotel.guest_room"})
    defects = fields.List(fields.Nested(DefectSchema), load_default=list, validate=validate.Length(max=100))
    lost_and_found = fields.List(fields.Nested(FoundItemSchema), load_default=list,
                                 validate=validate.Length(max=50))
    fail_reason = fields.String(load_default=None, allow_none=True, validate=TEXT, metadata={
        "description": "Why the inspection failed: needed to take 'fail'"})
    # Derived.
    housekeeping_defects = fields.Raw(load_default=None, metadata={"description": "Derived: count"})
    maintenance_defects = fields.Raw(load_default=None, metadata={"description": "Derived: count"})
    faults_dispatched = fields.Raw(load_default=None, metadata={
        "description": "Derived: every maintenance defect has its repair (null without any)"})
    repair_ids = fields.Raw(load_default=None, metadata={"description": "Derived: the repairs opened"})
    passed_first_time = fields.Raw(load_default=None, metadata={
        "description": "Derived from the stamps: inspected without a failed inspection"})
    self_check_allowed = fields.Raw(load_default=None, metadata={
        "description": "Derived: the attendant's role has inspection cadence 0 (self-check)"})

    @post_load
    def _derive(self, data: dict[str, Any], **kwargs) -> dict[str, Any]:
        return derive_defects(data)


def derive_defects(data: dict[str, Any]) -> dict[str, Any]:
    defects = data.get("defects") or []
    maintenance = [d for d in defects if d.get("kind") == "maintenance"]
    data["housekeeping_defects"] = sum(1 for d in defects if d.get("kind") == "housekeeping")
    data["maintenance_defects"] = len(maintenance)
    data["faults_dispatched"] = all(d.get("repair_id") for d in maintenance) if maintenance else None
    data["repair_ids"] = [d["repair_id"] for d in maintenance if d.get("repair_id")]
    return data


class DamageSchema(Schema):
    """One damage line of a check-out inspection, priced from the tenant's list."""

    class Meta:
        unknown = RAISE

    code = fields.String(required=True, validate=CODE, metadata={"description": "A code of the price list"})
    description = fields.String(load_default="", validate=TEXT)
    quantity = fields.Integer(load_default=1, strict=True, validate=validate.Range(min=1, max=1000))
    unit_price = fields.Float(load_default=None, allow_none=True, validate=validate.Range(min=0, max=1e7),
                              metadata={"description": "Default: the list price in force"})
    evidence = URLS
    witness_id = fields.String(load_default=None, allow_none=True, validate=validate.Length(max=100),
                               metadata={"description": "The member of staff who witnessed it"})
    # Set by the plugin when the line is first saved, then kept.
    list_price = fields.Raw(load_default=None, metadata={
        "description": "Set by the plugin: the list price in force when the line was made"})
    currency = fields.Raw(load_default=None)
    amount = fields.Raw(load_default=None, metadata={"description": "Derived: quantity × unit_price"})
    priced_at = fields.Raw(load_default=None, metadata={"description": "Set by the plugin: when it was priced"})


class MinibarSchema(Schema):
    class Meta:
        unknown = RAISE

    item = fields.String(required=True, validate=validate.Length(min=1, max=100))
    quantity = fields.Integer(load_default=1, strict=True, validate=validate.Range(min=1, max=100))
    unit_price = fields.Float(required=True, validate=validate.Range(min=0, max=1e6))


class GuestSchema(Schema):
    """The guest (personal data): core's survey triggers invite ``customer``'s contact."""

    class Meta:
        unknown = RAISE

    name = fields.String(validate=validate.Length(max=200))
    phone = fields.String(validate=validate.Length(max=40))
    email = fields.Email(validate=validate.Length(max=254))
    language = fields.String(validate=validate.OneOf(("en", "zh")))


class WaiverSchema(Schema):
    class Meta:
        unknown = RAISE

    amount = fields.Float(load_default=None, allow_none=True, validate=validate.Range(min=0))
    reason = fields.String(load_default=None, allow_none=True, validate=TEXT)
    approved_by = fields.String(load_default=None, allow_none=True, validate=validate.Length(max=100),
                                metadata={"description": "The manager who approved the waiver"})


class CheckoutInspectionData(Schema):
    """``data`` of a ``hotel.checkout_inspection``."""

    class Meta:
        unknown = RAISE

    room = fields.String(required=True, validate=validate.Length(min=1, max=20))
    stay_ref = fields.String(load_default=None, allow_none=True, validate=validate.Length(max=100))
    customer = fields.Nested(GuestSchema, load_default=dict, metadata={
        "description": "The guest: personal data; invited to the guest comment form at check-out"})
    damages = fields.List(fields.Nested(DamageSchema), load_default=list, validate=validate.Length(max=50))
    minibar = fields.List(fields.Nested(MinibarSchema), load_default=list, validate=validate.Length(max=50))
    prior_inspection_id = fields.UUID(load_default=None, allow_none=True, metadata={
        "description": "The room's last inspected hotel.room_turnover before the stay"})
    explained = fields.Boolean(load_default=None, allow_none=True)
    handled_privately = fields.Boolean(load_default=None, allow_none=True)
    preventive_service = fields.Boolean(load_default=None, allow_none=True, metadata={
        "description": "Preventive help was offered during the stay (extra ashtrays): a bonus"})
    guest_response = fields.String(load_default=None, allow_none=True,
                                   validate=validate.OneOf(GUEST_RESPONSES))
    waiver = fields.Nested(WaiverSchema, load_default=None, allow_none=True)
    room_out_of_order = fields.Boolean(load_default=None, allow_none=True)
    repair_id = fields.UUID(load_default=None, allow_none=True)
    # Derived.
    damage_total = fields.Raw(load_default=None, metadata={"description": "Derived: Σ amounts"})
    evidence_complete = fields.Raw(load_default=None, metadata={
        "description": "Derived: every line has evidence or a witness (null without damage)"})
    priced_per_list = fields.Raw(load_default=None, metadata={
        "description": "Derived: every unit price is the list price in force when it was made"})
    prior_inspection_on_file = fields.Raw(load_default=None, metadata={"description": "Derived"})
    room_blocked_for_repair = fields.Raw(load_default=None, metadata={
        "description": "Derived: out of order with a repair (null without damage)"})

    @validates_schema
    def _waiver(self, data: dict[str, Any], **kwargs) -> None:
        waiver = data.get("waiver")
        if waiver and (waiver.get("reason") or waiver.get("approved_by")) and not (
                waiver.get("reason") and waiver.get("approved_by")):
            raise ValidationError("A waiver needs both a reason and the approving manager.", "waiver")

    @post_load
    def _derive(self, data: dict[str, Any], **kwargs) -> dict[str, Any]:
        damages = data.get("damages") or []
        data["evidence_complete"] = (all(d.get("evidence") or d.get("witness_id") for d in damages)
                                     if damages else None)
        data["prior_inspection_on_file"] = data.get("prior_inspection_id") is not None
        data["room_blocked_for_repair"] = (bool(data.get("room_out_of_order") and data.get("repair_id"))
                                           if damages else None)
        return data


TURNOVER_WORKFLOW = Workflow(
    transitions=(
        Transition("start", ("dirty",), "cleaning", "started_at", _t("Start cleaning", "开始清扫"),
                   restamp=True),
        Transition("finish", ("cleaning",), "cleaned", "finished_at", _t("Finish cleaning", "清扫完成"),
                   restamp=True),
        Transition("pass", ("cleaned",), "inspected", "inspected_at", _t("Pass the inspection", "查房合格")),
        Transition("fail", ("cleaned",), "dirty", "failed_at", _t("Fail the inspection: re-clean", "查房不合格,返工"),
                   requires={"fail_reason": {"present": True}}),
        Transition("self_check", ("cleaned",), "inspected", "inspected_at",
                   _t("Self-check (no inspection for this role)", "自查合格(免查房岗位)"),
                   requires={"self_check_allowed": [True]}),
        Transition("dnd", ("dirty", "cleaning"), "dnd", "dnd_at",
                   _t("Do not disturb / service refused", "请勿打扰/拒绝服务"), restamp=True),
        Transition("resume", ("dnd",), "dirty", "resumed_at", _t("Resume", "恢复清扫"), restamp=True),
        Transition("block", ("dirty",), "blocked", "blocked_at", _t("Out of order", "列为维修房"),
                   restamp=True),
        Transition("release", ("blocked",), "dirty", "released_at", _t("Back in service", "恢复可用"),
                   restamp=True),
    ),
    initial_stamp="dirty_at",
    waiting=("dnd", "blocked"),
    final=("inspected",),
)

CHECKOUT_WORKFLOW = Workflow(
    transitions=(
        Transition("pass", ("requested",), "clear", "inspected_at", _t("Room clear", "查房无异常")),
        Transition("find_damage", ("requested",), "damage_found", "inspected_at",
                   _t("Damage found", "发现损坏"), requires={"damages": {"present": True}}),
        Transition("propose", ("damage_found",), "charge_proposed", "proposed_at",
                   _t("Propose the charge", "提出赔偿")),
        Transition("accept", ("charge_proposed",), "charged", "settled_at", _t("Guest accepts", "客人接受")),
        Transition("dispute", ("charge_proposed",), "disputed", "disputed_at", _t("Guest disputes", "客人异议")),
        Transition("charge", ("disputed",), "charged", "settled_at", _t("Charged after discussion", "协商后赔偿")),
        Transition("waive", ("damage_found", "charge_proposed", "disputed"), "waived", "settled_at",
                   _t("Waive (manager's approval)", "免赔(经理批准)"),
                   requires={"waiver.reason": {"present": True}, "waiver.approved_by": {"present": True}}),
    ),
    initial_stamp="requested_at",
    final=("clear", "charged", "waived"),
)


def room_kinds() -> list[RecordKind]:
    return [
        RecordKind(
            name="hotel.room_turnover", schema=RoomTurnoverData,
            title=_t("Room turnover", "客房清扫与查房"),
            description="One cleaning of one room and its inspection: a failed inspection sends the "
                        "room back to dirty and counts against first-pass.",
            statuses=TURNOVER_STATUSES, workflow=TURNOVER_WORKFLOW, first_time_fix="passed_first_time"),
        RecordKind(
            name="hotel.checkout_inspection", schema=CheckoutInspectionData,
            title=_t("Check-out inspection", "退房查房"),
            description="The room check at check-out and its damage charges, priced from the "
                        "price list in force, each with evidence or a witness.",
            statuses=CHECKOUT_STATUSES, workflow=CHECKOUT_WORKFLOW, personal=("customer",),
            links=("prior_inspection_id", "repair_id")),
    ]
