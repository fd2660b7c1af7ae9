"""A test-only plugin (``gated``): a job kind whose workflow has guarded transitions
(``requires``) and a stalled-record watch (``stalled_after``). Used by
``tests/test_guards.py`` and ``tests/test_stalled.py``; load it with
``app_config["EXTRA_PLUGINS"] = [("gated", GatedPlugin())]`` and enable it per tenant.
"""

from __future__ import annotations

from marshmallow import Schema, fields

from servq.core.surface import RecordKind, Transition, Workflow, hookimpl

KIND = "gated.job"


class SheetData(Schema):
    signed = fields.Boolean(allow_none=True)
    signer = fields.String(allow_none=True)


class WaiverData(Schema):
    reason = fields.String(allow_none=True)
    approver_id = fields.String(allow_none=True)


class JobData(Schema):
    title = fields.String(required=True)
    service_sheet = fields.Nested(SheetData, allow_none=True)
    satisfied = fields.Boolean(allow_none=True)
    result = fields.String(allow_none=True)
    waiver = fields.Nested(WaiverData, allow_none=True)
    customer = fields.String(allow_none=True)


FLOW = Workflow(
    transitions=(
        Transition("start", ("open",), "working", "started_at", {"en": "Start", "zh": "开始"}),
        Transition("hold", ("working",), "on_hold", "held_at", {"en": "Hold", "zh": "挂起"}),
        Transition("resume", ("on_hold",), "working", None, {"en": "Resume", "zh": "继续"}),
        Transition("submit", ("working",), "review", "submitted_at", {"en": "Submit", "zh": "提交"},
                   requires={"service_sheet.signed": [True]}),
        Transition("close", ("review",), "closed", "closed_at", {"en": "Close", "zh": "关闭"},
                   requires={"satisfied": [True], "result": {"not": ["rejected"]}}),
        Transition("waive", ("working",), "closed", "closed_at", {"en": "Waive", "zh": "豁免"},
                   requires={"waiver.reason": {"present": True},
                             "waiver.approver_id": {"present": True}}),
    ),
    initial_stamp="opened_at",
    waiting=("on_hold",),
    final=("closed",),
    stalled_after={"open": "4h", "working": "1 working day", "review": "4h"},
    stalled_notify=("manager",),
    stalled_action=True,
)


class GatedPlugin:
    """Jobs with guarded transitions and a stall rule (test plugin)."""

    __test__ = False

    @hookimpl
    def register_record_kinds(self):
        return [RecordKind(name=KIND, schema=JobData, title={"en": "Job", "zh": "工单"},
                           statuses=("open", "working", "on_hold", "review", "closed"),
                           workflow=FLOW, personal=("customer",))]
