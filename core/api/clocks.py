"""Deadline clocks of records."""

from __future__ import annotations

from datetime import datetime

from flask.views import MethodView
from marshmallow import Schema, fields
from sqlalchemy import select

from servq.core.api.blueprint import Blueprint
from servq.core.api.context import enabled_kinds, require
from servq.core.api.pagination import PAGINATION_HEADER_DOC, PageArgs, paginate
from servq.core.api.records import get_record
from servq.core.deadlines.breaches import standard_items
from servq.core.deadlines.clocks import pause_spans
from servq.core.deadlines.pauses import pause_totals
from servq.core.deadlines.views import clock_view
from servq.core.db.session import request_session
from servq.core.db import utcnow
from servq.core.models import Clock

URL = "/records"
blp = Blueprint("clocks", __name__, description="Deadline clocks of records.")


class ClockTitleSchema(Schema):
    en = fields.String()
    zh = fields.String()


class ClockPauseSchema(Schema):
    start = fields.AwareDateTime()
    end = fields.AwareDateTime(allow_none=True, metadata={"description": "null while paused"})
    reason = fields.String(allow_none=True)
    state = fields.String(allow_none=True, metadata={"description": "The waiting state that paused the clock"})
    capped = fields.Boolean(metadata={"description": "Ended by a pause cap (the clock resumed by itself)"})
    cap = fields.String(allow_none=True, metadata={"description": "The cap that ended it: a state or 'total'"})
    seconds = fields.Float(allow_none=True, metadata={"description": "Real seconds it held; null while paused"})


class ClockPauseTotalsSchema(Schema):
    seconds = fields.Float(metadata={"description": "Real seconds of the closed pauses"})
    by_state = fields.Dict(keys=fields.String(), values=fields.Float(),
                           metadata={"description": "Seconds per waiting state"})
    by_reason = fields.Dict(keys=fields.String(), values=fields.Float(),
                            metadata={"description": "Seconds per reason given"})
    cap_hits = fields.Integer(metadata={"description": "Pauses ended by a cap"})


class ClockWithdrawalSchema(Schema):
    breached_at = fields.AwareDateTime(metadata={"description": "The breach that was escalated (its due time then)"})
    withdrawn_at = fields.AwareDateTime(metadata={"description": "When the record's history disproved it"})
    state = fields.String(metadata={"description": "The clock's state the history gave: met, paused or running"})


class ClockSchema(Schema):
    id = fields.UUID()
    standard_code = fields.String()
    standard_version = fields.Integer()
    item = fields.String(metadata={"description": "The deadline item's code"})
    title = fields.Nested(ClockTitleSchema, allow_none=True)
    start = fields.AwareDateTime()
    target = fields.String(metadata={"description": "The limit as written: '30m', '5 working days'; "
                                                    "or the moment it is due at: 'at data.appointment.to', "
                                                    "'30m before data.window.to', '08:30 local'"})
    time = fields.String(metadata={"description": "working (the tenant's calendar) or wall (real time)"})
    due = fields.AwareDateTime(metadata={"description": "Due time, moved by the pauses so far"})
    stop = fields.AwareDateTime(allow_none=True, metadata={"description": "When the clock was stopped"})
    state = fields.String(metadata={"description": "running, paused, met or breached"})
    paused_since = fields.AwareDateTime(allow_none=True)
    pause_reason = fields.String(allow_none=True)
    pauses = fields.List(fields.Nested(ClockPauseSchema))
    pause_totals = fields.Nested(ClockPauseTotalsSchema)
    pauses_in = fields.List(fields.String(), allow_none=True, metadata={
        "description": "The waiting states that pause it; null: every waiting state"})
    pause_cap = fields.Dict(keys=fields.String(), values=fields.String(), allow_none=True,
                            metadata={"description": "Most paused time per state and 'total'"})
    warned = fields.List(fields.Integer(), metadata={"description": "Warning levels sent (percent)"})
    breached_at = fields.AwareDateTime(allow_none=True,
                                       metadata={"description": "Set once the breach was escalated"})
    withdrawn = fields.List(fields.Nested(ClockWithdrawalSchema), metadata={
        "description": "Escalated breaches withdrawn because the record's history, entered "
                       "later, disproved them (a stop in time, a pause), oldest first"})
    time_left_seconds = fields.Integer(metadata={"description": "In the clock's own time"})
    time_over_seconds = fields.Integer(metadata={"description": "In the clock's own time"})
    percent_used = fields.Float()
    counted_at = fields.AwareDateTime(metadata={
        "description": "The instant time left/over are counted at: now, the stop or the pause"})


@blp.route("/<uuid:record_id>/clocks")
class RecordClocks(MethodView):
    @require("read")
    @blp.arguments(PageArgs(), location="query")
    @blp.response(200, ClockSchema(many=True), headers=PAGINATION_HEADER_DOC)
    def get(self, args, record_id):
        """The record's deadline clocks: due time, pauses, state, time left or over."""
        from servq.core.calendar.tenant import tenant_calendar

        session = request_session()
        record = get_record(record_id, enabled_kinds())
        stmt = (select(Clock).where(Clock.record_id == record.id)
                .order_by(Clock.standard_code, Clock.item_code))
        headers: dict = {}
        clocks = paginate(session, stmt, args, headers)
        now = utcnow()
        calendar = tenant_calendar(session) if any(c.business for c in clocks) else None
        items = standard_items(session, {(c.standard_code, c.standard_version) for c in clocks})
        out = []
        for clock in clocks:
            item = items.get((clock.standard_code, clock.standard_version), {}).get(clock.item_code, {})
            out.append({
                "id": clock.id, "standard_code": clock.standard_code,
                "standard_version": clock.standard_version, "item": clock.item_code,
                "title": item.get("title"), "start": clock.start_at, "target": clock.target,
                "due": clock.due_at, "stop": clock.stop_at, "state": clock.state,
                "paused_since": clock.paused_since, "pause_reason": clock.pause_reason,
                "pauses": [{"start": a, "end": b, "reason": p.get("reason"), "state": p.get("state"),
                            "capped": bool(p.get("capped")), "cap": p.get("cap"),
                            "seconds": p.get("seconds")}
                           for (a, b), p in zip(pause_spans(clock), clock.pauses or ())],
                "pause_totals": pause_totals(clock),
                "pauses_in": (clock.pause_rules or {}).get("in"),
                "pause_cap": (clock.pause_rules or {}).get("cap"),
                "warned": sorted(clock.warned or ()), "breached_at": clock.breached_at,
                "withdrawn": [{"breached_at": datetime.fromisoformat(w["breached_at"]),
                               "withdrawn_at": datetime.fromisoformat(w["withdrawn_at"]),
                               "state": w.get("state")} for w in clock.withdrawals or ()],
                **clock_view(clock, calendar, now),
            })
        return out, 200, headers
