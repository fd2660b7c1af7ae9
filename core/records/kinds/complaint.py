"""The ``complaint`` record kind: a customer's complaint and its handling workflow.

Industry-neutral: channel, severity, category, the customer's contact (personal data,
masked for roles below manager), the record it is about, root cause and compensation.
Its workflow::

    received ─acknowledge→ acknowledged ─investigate→ investigating ─resolve→ resolved ─confirm→ closed
                                │  └──────────────resolve──────────────────────↗   │            │
                                └─wait→ waiting_for_customer ─resume→ investigating  └─reopen→ investigating ←┘

``wait`` (from acknowledged or investigating) pauses the deadlines and needs a reason;
``resume`` continues the investigation. ``reopen`` (from resolved or closed) clears
``resolved_at`` and ``closed_at`` so the resolution deadline runs again. Each step stamps
a timestamp the deadlines read: ``received_at`` (= ``occurred_at``, with its copy
``general_received_at`` or ``serious_received_at`` by severity), ``acknowledged_at``,
``investigating_at``, ``waiting_at``, ``resolved_at``, ``closed_at``, ``reopened_at``.

Core ships the default standard ``core.complaint`` (``standards/core.complaint.toml``):
acknowledge within 4 working hours, resolve general complaints within 5 working days and
serious ones within 2 working days. Guide: ``docs/calendars-and-workflows.md``.
"""

from __future__ import annotations

from marshmallow import Schema, fields, validate

from servq.core.plugins import RecordKind, Transition, Workflow, hookimpl

CHANNELS = ("phone", "hotline", "email", "web", "in_person", "social", "internal")
SEVERITIES = ("general", "serious")
STATUSES = ("received", "acknowledged", "investigating", "waiting_for_customer", "resolved", "closed")
PHONE = validate.Regexp(r"^\+?[0-9][0-9 ()\-]{2,38}$",
                        error="A phone number: digits, spaces, '-', '(' and ')', optionally starting with '+'.")


class CustomerSchema(Schema):
    """Who complained: personal data, masked for roles without ``personal_data``."""

    name = fields.String(validate=validate.Length(max=200))
    phone = fields.String(validate=[validate.Length(max=40), PHONE])
    email = fields.Email(validate=validate.Length(max=254))


class CompensationSchema(Schema):
    """What the customer was given to make up for it."""

    amount = fields.Float(required=True, allow_nan=False, validate=validate.Range(min=0, max=1e12))
    currency = fields.String(required=True, validate=validate.Regexp(
        r"^[A-Z]{3}$", error="An ISO 4217 currency code such as CNY, EUR or USD."))
    note = fields.String(load_default="", validate=validate.Length(max=500))


class ComplaintData(Schema):
    """``data`` of a complaint."""

    channel = fields.String(required=True, validate=validate.OneOf(CHANNELS))
    severity = fields.String(load_default="general", validate=validate.OneOf(SEVERITIES))
    category = fields.String(load_default="", validate=validate.Length(max=100))
    description = fields.String(required=True, validate=validate.Length(min=1, max=10_000))
    customer = fields.Nested(CustomerSchema, load_default=dict)
    record_id = fields.UUID(load_default=None, allow_none=True, metadata={
        "description": "The record (delivery, work order, stay…) the complaint is about"})
    root_cause = fields.String(load_default="", validate=validate.Length(max=2000))
    compensation = fields.Nested(CompensationSchema, load_default=None, allow_none=True)


def _t(en: str, zh: str) -> dict[str, str]:
    return {"en": en, "zh": zh}


WORKFLOW = Workflow(
    transitions=(
        Transition("acknowledge", ("received",), "acknowledged", "acknowledged_at",
                   _t("Acknowledge", "受理")),
        Transition("investigate", ("acknowledged",), "investigating", "investigating_at",
                   _t("Investigate", "调查处理")),
        Transition("wait", ("acknowledged", "investigating"), "waiting_for_customer", "waiting_at",
                   _t("Wait for the customer", "等待客户"), restamp=True),
        Transition("resume", ("waiting_for_customer",), "investigating", "investigating_at",
                   _t("Resume", "继续处理")),
        Transition("resolve", ("acknowledged", "investigating"), "resolved", "resolved_at",
                   _t("Resolve", "解决")),
        Transition("confirm", ("resolved",), "closed", "closed_at",
                   _t("Customer confirms: close", "客户确认，关闭")),
        Transition("reopen", ("resolved", "closed"), "investigating", "reopened_at",
                   _t("Reopen", "重新处理"), clears=("resolved_at", "closed_at"), restamp=True),
    ),
    initial_stamp="received_at",
    stamp_by="severity",
    waiting=("waiting_for_customer",),
    final=("closed",),
)


@hookimpl
def register_record_kinds():
    return [
        RecordKind(
            name="complaint",
            schema=ComplaintData,
            title=_t("Complaint", "投诉"),
            description="A customer's complaint, from receipt to the customer's confirmation; "
                        "its deadlines are watched against the tenant's business calendar.",
            statuses=STATUSES,
            workflow=WORKFLOW,
            personal=("customer",),
            links=("record_id",),
        )
    ]


@hookimpl
def register_standards():
    return [("servq.core.records.kinds", "standards")]
