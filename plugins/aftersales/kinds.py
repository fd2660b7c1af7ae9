"""The after-sales plugin's record kinds: tickets, visits, installations, daily reviews, calls.

``aftersales.ticket`` (售后服务单) follows the seed's loop (售后服务流程及管理规定)::

    received ─acknowledge→ acknowledged ─diagnose→ diagnosed ─plan→ planned ─start→ in_progress
        ─resolve→ resolved ─confirm→ closed
                      └─reject→ diagnosed   (the customer is not satisfied: re-diagnose)

``diagnose`` needs ``diagnosis.nature`` and ``diagnosis.cause``, ``plan`` needs
``plan.planned_at`` and ``plan.steps``, ``confirm`` needs ``confirmation.satisfied`` true
(guards: 409 naming the field). ``reject`` clears ``resolved_at`` (the resolution clock
runs again), stamps ``rediagnosed_at``; the plugin's hook sets ``fixed_first_time`` false.
``close_unconfirmed`` closes a ticket whose customer could not be reached
(``confirmation.contact_attempts`` ≥ 3); it fails ``customer_confirmed``.
``report_progress`` and ``escalate`` keep the status (one transition per state).
``wait_for_customer`` / ``wait_for_parts`` pause the clocks; the response clock has already
stopped at ``acknowledge`` (they are reachable only after it), so only resolution pauses.
``priority`` (p1..p4) is worked out from ``importance`` and ``urgency``; the workflow stamps
``p<n>_received_at`` so each priority has its own response and resolution items.

``aftersales.visit`` (上门服务): ``scheduled ─confirm→ confirmed ─arrive→ on_site ─complete→
completed`` with ``complete`` guarded by ``service_sheet.signed``; ``rebook`` (back to
scheduled, needs a new entry in ``rebookings`` with a reason); ``wait_for_parts``/``resume``;
``cancel``.

``aftersales.installation`` (交付与自行施工): ``contracted ─deliver→ delivered ─start→ installing
─commission→ commissioned ─accept→ accepted ─hand_over→ handed_over``; ``waiting_for_site``.

``aftersales.daily_review`` (每日碰头): the open tickets discussed; the hook derives
``unlisted_open_tickets`` (open tickets of the site not listed).

``aftersales.call`` (通话): a transcript of speaker turns. Phone, ID and card numbers in the
transcript are masked **when the call is stored**, so QA reviewers without the
``personal_data`` permission can read it; ``customer`` is personal data (masked on read).
"""

from __future__ import annotations

from datetime import datetime
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
from servq.plugins.aftersales.calls import CallData, mask_numbers  # noqa: F401 (re-exported)

CHANNELS = ("phone", "email", "web", "online_form", "wechat", "walk_in")
WARRANTY = ("under_warranty", "out_of_warranty", "under_contract", "out_of_contract")
REQUEST_TYPES = ("repair", "replacement", "return", "installation", "training", "consultation",
                 "complaint")
LEVELS = ("high", "normal", "low")
PRIORITIES = ("p1", "p2", "p3", "p4")
TICKET_STATUSES = ("received", "acknowledged", "diagnosed", "planned", "in_progress",
                   "waiting_for_customer", "waiting_for_parts", "resolved", "closed")
OPEN_TICKET_STATUSES = TICKET_STATUSES[:7]
VISIT_STATUSES = ("scheduled", "confirmed", "on_site", "waiting_for_parts", "completed", "cancelled")
INSTALLATION_STATUSES = ("contracted", "delivered", "installing", "waiting_for_site", "commissioned",
                         "accepted", "handed_over")
TRAINING_TOPICS = ("software", "performance", "usage", "structure")
PHONE = validate.Regexp(r"^\+?[0-9][0-9 ()\-]{2,38}$",
                        error="A phone number: digits, spaces, '-', '(' and ')', optionally starting with '+'.")
TEXT = validate.Length(max=10_000)
NAME = validate.Length(max=200)


def _t(en: str, zh: str) -> dict[str, str]:
    return {"en": en, "zh": zh}


def priority_of(importance: str, urgency: str) -> str:
    """The seed's priority from importance and urgency (根据问题的重要性和紧急程度确定优先级):
    both high → p1; one high, the other normal → p2; both normal or high with low → p3;
    otherwise p4."""
    rank = {"high": 2, "normal": 1, "low": 0}
    total = rank[importance] + rank[urgency]
    return {4: "p1", 3: "p2", 2: "p3"}.get(total, "p4")


class Strict(Schema):
    class Meta:
        unknown = RAISE


class CustomerSchema(Strict):
    """The customer: personal data, masked for roles without ``personal_data``."""

    name = fields.String(validate=NAME)
    phone = fields.String(validate=[validate.Length(max=40), PHONE])
    email = fields.Email(validate=validate.Length(max=254))


class ProductSchema(Strict):
    item_code = fields.String(validate=NAME)
    name = fields.String(validate=NAME)
    serial_no = fields.String(validate=validate.Length(max=100))


class DiagnosisSchema(Strict):
    nature = fields.String(validate=TEXT, metadata={"description": "性质: what kind of problem"})
    cause = fields.String(validate=TEXT, metadata={"description": "原因: its cause"})


class PlanSchema(Strict):
    planned_at = fields.AwareDateTime(metadata={"description": "所需时间: when it will be solved"})
    resources = fields.String(validate=TEXT, metadata={"description": "所需资源"})
    steps = fields.String(validate=TEXT, metadata={"description": "解决步骤"})


class ResolutionSchema(Strict):
    summary = fields.String(validate=TEXT, metadata={"description": "问题描述"})
    steps = fields.String(validate=TEXT, metadata={"description": "解决方法"})
    duration_minutes = fields.Integer(strict=True, validate=validate.Range(min=0, max=1_000_000),
                                      metadata={"description": "耗时"})


class EscalationSchema(Strict):
    to = fields.String(required=True, validate=validate.Length(min=1, max=200))
    reason = fields.String(validate=TEXT)
    promised_at = fields.AwareDateTime(required=True, metadata={
        "description": "承诺解决的时间: the date promised to the customer"})


class ConfirmationSchema(Strict):
    satisfied = fields.Boolean(load_default=None, allow_none=True)
    rating = fields.Integer(load_default=None, allow_none=True, strict=True,
                            validate=validate.Range(min=1, max=5))
    comment = fields.String(load_default="", validate=validate.Length(max=2000))
    signed = fields.Boolean(load_default=None, allow_none=True)
    contact_attempts = fields.Integer(load_default=0, strict=True, validate=validate.Range(min=0, max=100),
                                      metadata={"description": "Failed attempts to reach the customer"})


class TicketData(Strict):
    """``data`` of an ``aftersales.ticket``. ``priority`` and ``recorded_fully`` are derived
    on every write; ``kb_linked`` (from the record's knowledge-base links),
    ``fixed_first_time``, ``progress_log``,
    ``max_progress_gap_hours`` and ``escalated_when_stuck`` are kept by the plugin's
    workflow hook (a value sent back is accepted as it is)."""

    channel = fields.String(required=True, validate=validate.OneOf(CHANNELS))
    customer = fields.Nested(CustomerSchema, load_default=dict)
    product = fields.Nested(ProductSchema, load_default=dict)
    warranty_status = fields.String(load_default=None, allow_none=True, validate=validate.OneOf(WARRANTY))
    request_type = fields.String(required=True, validate=validate.OneOf(REQUEST_TYPES))
    importance = fields.String(load_default="normal", validate=validate.OneOf(LEVELS))
    urgency = fields.String(load_default="normal", validate=validate.OneOf(LEVELS))
    description = fields.String(required=True, validate=validate.Length(min=1, max=10_000))
    diagnosis = fields.Nested(DiagnosisSchema, load_default=None, allow_none=True)
    plan = fields.Nested(PlanSchema, load_default=None, allow_none=True)
    resolution = fields.Nested(ResolutionSchema, load_default=None, allow_none=True)
    escalation = fields.Nested(EscalationSchema, load_default=None, allow_none=True)
    confirmation = fields.Nested(ConfirmationSchema, load_default=None, allow_none=True)
    kb_articles = fields.List(fields.String(validate=validate.Length(min=1, max=100)),
                              load_default=list, validate=validate.Length(max=50), metadata={
                                  "description": "Knowledge-base articles used, by code or id (stored as "
                                                 "codes): each must be published; linked to the ticket "
                                                 "when it is resolved"})
    root_cause_category = fields.String(load_default=None, allow_none=True, validate=NAME)
    repeat_contact = fields.Boolean(load_default=None, allow_none=True, metadata={
        "description": "The customer came back about the same product within the repeat window"})
    fixed_first_time = fields.Boolean(load_default=None, allow_none=True, metadata={
        "description": "Kept by the workflow: false once re-diagnosed, true when closed without"})
    progress_log = fields.List(fields.Raw(), load_default=list, metadata={
        "description": "Kept by the workflow: each progress report {at, note}"})
    # Derived on every write or by the workflow hook.
    priority = fields.Raw(load_default=None, metadata={"description": "Derived: p1..p4"})
    recorded_fully = fields.Raw(load_default=None, metadata={
        "description": "Derived: problem, method and time taken recorded (n.a. before resolution)"})
    kb_linked = fields.Raw(load_default=None, metadata={
        "description": "Kept by the plugin: true when the ticket has a knowledge-base link (n.a. otherwise)"})
    max_progress_gap_hours = fields.Raw(load_default=None, metadata={
        "description": "Kept by the workflow: longest silence (h) between receipt, progress reports "
                       "and resolution; n.a. when resolved within 24 h"})
    diagnosis_recorded = fields.Raw(load_default=None, metadata={"description": "Kept by the workflow"})
    plan_recorded = fields.Raw(load_default=None, metadata={"description": "Kept by the workflow"})
    customer_confirmed = fields.Raw(load_default=None, metadata={
        "description": "Kept by the workflow: closed with the customer satisfied (n.a. before closing)"})
    escalated_when_stuck = fields.Raw(load_default=None, metadata={
        "description": "Kept by the workflow: escalated with a promised date when open past half "
                       "the resolution limit (n.a. otherwise)"})

    @post_load
    def _derive(self, data: dict[str, Any], **kwargs) -> dict[str, Any]:
        data["priority"] = priority_of(data["importance"], data["urgency"])
        resolution = data.get("resolution")
        data["recorded_fully"] = None if not resolution else bool(
            resolution.get("summary") and resolution.get("steps")
            and resolution.get("duration_minutes") is not None)
        return data


class AppointmentSchema(Strict):
    from_ = fields.AwareDateTime(required=True, data_key="from")
    to = fields.AwareDateTime(required=True)
    agreed_at = fields.AwareDateTime(load_default=None, allow_none=True)

    @validates_schema
    def _order(self, data, **kwargs):
        if data.get("from_") and data.get("to") and data["to"] <= data["from_"]:
            raise ValidationError("Ends after it starts.", "to")


class RebookingSchema(Strict):
    at = fields.AwareDateTime(required=True, metadata={"description": "When the customer was called"})
    reason = fields.String(required=True, validate=validate.Length(min=1, max=2000))
    old_from = fields.AwareDateTime(required=True)
    new_from = fields.AwareDateTime(required=True)
    new_to = fields.AwareDateTime(required=True)


class PartSchema(Strict):
    code = fields.String(required=True, validate=validate.Length(min=1, max=100))
    qty = fields.Integer(required=True, strict=True, validate=validate.Range(min=1, max=100_000))


class ServiceSheetSchema(Strict):
    signed = fields.Boolean(load_default=False)
    signed_by = fields.String(load_default=None, allow_none=True, validate=NAME)
    signature_ref = fields.String(load_default=None, allow_none=True, validate=validate.Length(max=2000))


def _iso(value: Any) -> Any:
    return value.isoformat() if isinstance(value, datetime) else value


class VisitData(Strict):
    """``data`` of an ``aftersales.visit``; ``rebook_explained`` and ``not_left_hanging``
    are derived on every write."""

    ticket_id = fields.UUID(required=True)
    appointment = fields.Nested(AppointmentSchema, required=True)
    rebookings = fields.List(fields.Nested(RebookingSchema), load_default=list,
                             validate=validate.Length(max=50))
    work_done = fields.String(load_default="", validate=TEXT)
    parts = fields.List(fields.Nested(PartSchema), load_default=list, validate=validate.Length(max=200))
    unresolved = fields.Boolean(load_default=False)
    escalated_to = fields.String(load_default=None, allow_none=True, validate=NAME)
    promised_at = fields.AwareDateTime(load_default=None, allow_none=True)
    service_sheet = fields.Nested(ServiceSheetSchema, load_default=dict)
    rating = fields.Integer(load_default=None, allow_none=True, strict=True, validate=validate.Range(min=1, max=5))
    rebook_explained = fields.Raw(load_default=None, metadata={
        "description": "Derived: every rebooking was called in before the old appointment (n.a. without)"})
    not_left_hanging = fields.Raw(load_default=None, metadata={
        "description": "Derived: an unresolved visit names who it went to and a promised date"})

    @post_load
    def _derive(self, data: dict[str, Any], **kwargs) -> dict[str, Any]:
        rebookings = data.get("rebookings") or []
        data["rebook_explained"] = (all(r["at"] <= r["old_from"] for r in rebookings)
                                    if rebookings else None)
        data["not_left_hanging"] = (bool(data.get("escalated_to") and data.get("promised_at"))
                                    if data.get("unresolved") else None)
        return data


class DeliverySchema(Strict):
    arrived_city_at = fields.AwareDateTime(load_default=None, allow_none=True)
    customer_called_at = fields.AwareDateTime(load_default=None, allow_none=True)
    address_confirmed = fields.Boolean(load_default=None, allow_none=True)
    quantity_confirmed = fields.Boolean(load_default=None, allow_none=True)
    signed = fields.Boolean(load_default=None, allow_none=True)


class PlansSchema(Strict):
    schedule = fields.Boolean(load_default=False, metadata={"description": "施工进度规划"})
    materials_list = fields.Boolean(load_default=False, metadata={"description": "材料采购单"})
    materials_due_at = fields.AwareDateTime(load_default=None, allow_none=True)
    cost_sheet = fields.Boolean(load_default=False, metadata={"description": "费用明细表"})


class TrainingSchema(Strict):
    requested = fields.Boolean(load_default=False)
    topics = fields.List(fields.String(validate=validate.OneOf(TRAINING_TOPICS)), load_default=list)
    delivered_at = fields.AwareDateTime(load_default=None, allow_none=True)


class InstallationData(Strict):
    """``data`` of an ``aftersales.installation``; ``plans_prepared`` and
    ``training_delivered`` are derived."""

    contract_ref = fields.String(required=True, validate=validate.Length(min=1, max=100))
    customer = fields.Nested(CustomerSchema, load_default=dict)
    delivery = fields.Nested(DeliverySchema, load_default=dict)
    plans = fields.Nested(PlansSchema, load_default=dict)
    contract_due_at = fields.AwareDateTime(load_default=None, allow_none=True)
    training = fields.Nested(TrainingSchema, load_default=dict)
    plans_prepared = fields.Raw(load_default=None, metadata={"description": "Derived"})
    training_delivered = fields.Raw(load_default=None, metadata={
        "description": "Derived: n.a. unless training was requested"})

    @post_load
    def _derive(self, data: dict[str, Any], **kwargs) -> dict[str, Any]:
        plans = data["plans"]
        data["plans_prepared"] = bool(plans.get("schedule") and plans.get("materials_list")
                                      and plans.get("cost_sheet"))
        training = data["training"]
        data["training_delivered"] = (training.get("delivered_at") is not None
                                      if training.get("requested") else None)
        return data


class DailyReviewData(Strict):
    """``data`` of an ``aftersales.daily_review``; ``unlisted_open_tickets`` is worked out by
    the plugin's hook (open tickets of the review's site received before it, not listed)."""

    date = fields.Date(required=True)
    open_ticket_ids = fields.List(fields.UUID(), load_default=list, validate=validate.Length(max=2000))
    next_day_plan = fields.String(load_default="", validate=TEXT)
    attendees = fields.List(fields.String(validate=NAME), load_default=list, validate=validate.Length(max=100))
    unlisted_open_tickets = fields.Raw(load_default=None, metadata={"description": "Derived by the hook"})
    unlisted_ticket_ids = fields.Raw(load_default=None, metadata={"description": "Derived by the hook"})


def _steps(action: str, states: tuple[str, ...], stamp: str, title: dict[str, str]):
    """An action that records something and keeps the status: one transition per state."""
    return tuple(Transition(action, (state,), state, stamp, title, restamp=True) for state in states)


_WORKING = ("acknowledged", "diagnosed", "planned", "in_progress")

TICKET_WORKFLOW = Workflow(
    transitions=(
        Transition("acknowledge", ("received",), "acknowledged", "acknowledged_at", _t("Acknowledge", "受理")),
        Transition("diagnose", ("acknowledged",), "diagnosed", "diagnosed_at", _t("Diagnose", "诊断"),
                   requires={"diagnosis.nature": {"present": True}, "diagnosis.cause": {"present": True}}),
        Transition("plan", ("diagnosed",), "planned", "planned_at", _t("Plan", "制定方案"),
                   requires={"plan.planned_at": {"present": True}, "plan.steps": {"present": True}}),
        Transition("start", ("planned",), "in_progress", "started_at", _t("Start", "开始处理")),
        Transition("resolve", ("in_progress",), "resolved", "resolved_at", _t("Resolve", "解决")),
        Transition("confirm", ("resolved",), "closed", "closed_at", _t("Customer confirms: close", "客户确认，关闭"),
                   requires={"confirmation.satisfied": [True]}),
        Transition("close_unconfirmed", ("resolved",), "closed", "closed_at",
                   _t("Close: customer unreachable", "客户无法联系，关闭"),
                   requires={"confirmation.contact_attempts": [3, 4, 5, 6, 7, 8, 9, 10]}),
        Transition("reject", ("resolved",), "diagnosed", "rediagnosed_at",
                   _t("Customer not satisfied: re-diagnose", "客户不满意，重新诊断"),
                   clears=("resolved_at",), restamp=True),
        *_steps("report_progress", (*_WORKING, "waiting_for_customer", "waiting_for_parts"), "progress_at",
                _t("Report progress to the customer", "告知处理进展")),
        *_steps("escalate", (*_WORKING, "waiting_for_customer", "waiting_for_parts"), "escalated_at",
                _t("Escalate (resolution date promised)", "上报并承诺解决时间")),
        Transition("wait_for_customer", _WORKING, "waiting_for_customer", "waiting_at",
                   _t("Wait for the customer", "等待客户"), restamp=True),
        Transition("wait_for_parts", _WORKING, "waiting_for_parts", "waiting_at",
                   _t("Wait for parts", "等待配件"), restamp=True),
        Transition("resume", ("waiting_for_customer", "waiting_for_parts"), "in_progress", "resumed_at",
                   _t("Resume", "继续处理"), restamp=True),
    ),
    initial_stamp="received_at",
    stamp_by="priority",
    waiting=("waiting_for_customer", "waiting_for_parts"),
    final=("closed",),
    stalled_after="3 working days",
    stalled_notify=("manager",),
)

VISIT_WORKFLOW = Workflow(
    transitions=(
        Transition("confirm", ("scheduled",), "confirmed", "confirmed_at",
                   _t("Customer confirmed by phone", "出发前电话确认")),
        Transition("rebook", ("scheduled", "confirmed"), "scheduled", "rebooked_at",
                   _t("Rebook (customer called, reason given)", "改约(已致电说明)"),
                   clears=("confirmed_at",), restamp=True, requires={"rebookings": {"present": True}}),
        Transition("arrive", ("confirmed",), "on_site", "arrived_at", _t("Arrive on site", "到达现场")),
        Transition("wait_for_parts", ("on_site",), "waiting_for_parts", "waiting_at",
                   _t("Wait for parts", "等待配件"), restamp=True),
        Transition("resume", ("waiting_for_parts",), "on_site", "resumed_at", _t("Resume", "继续维修"),
                   restamp=True),
        Transition("complete", ("on_site",), "completed", "completed_at",
                   _t("Complete (service sheet signed)", "完工(客户签单)"),
                   requires={"service_sheet.signed": [True]}),
        Transition("cancel", ("scheduled", "confirmed"), "cancelled", "cancelled_at", _t("Cancel", "取消")),
    ),
    initial_stamp="scheduled_at",
    waiting=("waiting_for_parts",),
    final=("completed", "cancelled"),
)

INSTALLATION_WORKFLOW = Workflow(
    transitions=(
        Transition("deliver", ("contracted",), "delivered", "delivered_at", _t("Deliver", "到货")),
        Transition("start", ("delivered",), "installing", "installing_at", _t("Start installing", "开始施工")),
        Transition("wait_for_site", ("delivered", "installing"), "waiting_for_site", "waiting_at",
                   _t("Wait for the customer's site", "等待现场条件"), restamp=True),
        Transition("resume", ("waiting_for_site",), "installing", "resumed_at", _t("Resume", "继续施工"),
                   restamp=True),
        Transition("commission", ("installing",), "commissioned", "commissioned_at", _t("Commission", "调试完毕")),
        Transition("accept", ("commissioned",), "accepted", "accepted_at", _t("Customer accepts", "甲方验收")),
        Transition("hand_over", ("accepted",), "handed_over", "handed_over_at", _t("Hand over", "设备移交")),
    ),
    initial_stamp="contracted_at",
    waiting=("waiting_for_site",),
    final=("handed_over",),
)


def record_kinds() -> list[RecordKind]:
    """The plugin's record kinds (registered through ``register_record_kinds``)."""
    return [
        RecordKind(name="aftersales.ticket", schema=TicketData, title=_t("After-sales ticket", "售后服务单"),
                   description="A customer's request, from receipt to the customer's confirmation; "
                               "a customer not satisfied sends it back to diagnosis.",
                   statuses=TICKET_STATUSES, workflow=TICKET_WORKFLOW, personal=("customer",),
                   first_time_fix="fixed_first_time",
                   # Knowledge-base suggestions: the fault as described and diagnosed, the product.
                   kb_text=("description", "product.name", "product.item_code", "diagnosis.nature",
                            "diagnosis.cause"),
                   kb_product=("product.item_code", "product.name"), kb_category=("root_cause_category",)),
        RecordKind(name="aftersales.visit", schema=VisitData, title=_t("On-site visit", "上门服务"),
                   description="A visit to the customer: confirmed by phone before leaving, completed "
                               "only with the customer's signed service sheet.",
                   statuses=VISIT_STATUSES, workflow=VISIT_WORKFLOW, links=("ticket_id",)),
        RecordKind(name="aftersales.installation", schema=InstallationData,
                   title=_t("Delivery and installation", "交付与自行施工"),
                   description="Delivery, installation and commissioning; accepted and handed over "
                               "within five days of commissioning.",
                   statuses=INSTALLATION_STATUSES, workflow=INSTALLATION_WORKFLOW, personal=("customer",)),
        RecordKind(name="aftersales.daily_review", schema=DailyReviewData, title=_t("Daily review", "每日碰头"),
                   description="The end-of-day review of every open ticket of a service centre.",
                   statuses=("held",)),
        RecordKind(name="aftersales.call", schema=CallData, title=_t("Call", "通话"),
                   description="A service call, callback or telemarketing call with its transcript; "
                               "numbers said are masked when it is stored.",
                   statuses=("recorded", "reviewed"), personal=("customer",), links=("ticket_id",)),
    ]
