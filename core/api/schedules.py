"""Recurring obligations and their compliance."""

from __future__ import annotations

import uuid
from contextlib import contextmanager

from flask.views import MethodView
from flask_smorest import abort
from marshmallow import Schema, ValidationError, fields, validate, validates_schema
from sqlalchemy import select

from servq.core.api.blueprint import Blueprint
from servq.core.api.context import actor_id, enabled_kinds, require
from servq.core.api.pagination import PAGINATION_HEADER_DOC, PageArgs, paginate
from servq.core.audit import audit
from servq.core.db.session import request_session
from servq.core.models import Schedule
from servq.core.records.pipeline import utc_instant
from servq.core.calendar import format_duration, parse_duration
from servq.core.deadlines.periods import MAX_PERIODS, TooManyPeriods
from servq.core.deadlines.quotas import MAX_CELLS, MAX_MIN_COUNT
from servq.core.deadlines.schedules import (ROLES, ScheduleInvalid, compliance, create_schedule,
                                            update_schedule)

URL = "/schedules"
blp = Blueprint("schedules", __name__, description="Recurring obligations and their compliance.")


class GraceField(fields.Field):
    """A duration written as text (``"3 days"``, ``"12h"``), kept as whole seconds."""

    def _deserialize(self, value, attr, data, **kwargs):
        if value is None:
            return 0
        try:
            return int(parse_duration(value).total_seconds())
        except ValueError as exc:
            raise ValidationError(str(exc)) from exc

    def _serialize(self, value, attr, obj, **kwargs):
        from datetime import timedelta

        return format_duration(timedelta(seconds=value)) if value else None


class ScheduleSchema(Schema):
    id = fields.UUID(dump_only=True)
    key = fields.String(allow_none=True, validate=validate.Length(min=1, max=200), metadata={
        "description": "Optional unique key (plugins use it to create a schedule once)"})
    title = fields.String(required=True, validate=validate.Length(min=1, max=200))
    kind = fields.String(required=True, validate=validate.Length(min=1, max=100),
                         metadata={"description": "The record kind that meets a period"})
    standard_code = fields.String(allow_none=True, validate=validate.Length(min=1, max=100), metadata={
        "description": "When set, the record must have been evaluated against this standard"})
    match = fields.Dict(keys=fields.String(), allow_none=True, metadata={
        "description": "Top-level data values a record must have to meet a period, e.g. "
                       '{"facility": "fire_equipment", "check": "patrol"} (strings, integers, '
                       "booleans); {} or absent: any record of the kind"})
    site_id = fields.UUID(allow_none=True, metadata={"description": "When set, the record must be at this site"})
    rrule = fields.String(required=True, validate=validate.Length(min=1, max=500), metadata={
        "description": "iCalendar RRULE, e.g. FREQ=MONTHLY or FREQ=MONTHLY;INTERVAL=6 (at most daily)"})
    dtstart = fields.AwareDateTime(required=True, validate=utc_instant,
                                   metadata={"description": "Start of the first period"})
    grace = GraceField(attribute="grace_seconds", allow_none=True, metadata={
        "description": "Time allowed after a period ends to file its record (e.g. '3 days')",
        "type": "string"})
    active = fields.Boolean()
    action_on_miss = fields.Boolean(metadata={"description": "Open a corrective action for a missed period"})
    escalate_to = fields.List(fields.String(validate=validate.OneOf(ROLES)),
                              metadata={"description": "Roles notified of a missed period"})
    min_count = fields.Integer(allow_none=True, strict=True, metadata={
        "description": f"Matching records a period needs (per person with per = staff); default 1, "
                       f"at most {MAX_MIN_COUNT}"})
    per = fields.String(allow_none=True, metadata={
        "description": "'schedule' (default: one obligation per period) or 'staff' (each staff "
                       "member chosen by 'staff' owes the quota, judged and reported per person)"})
    staff = fields.Dict(keys=fields.String(), allow_none=True, attribute="staff_selector", metadata={
        "description": "Who is obligated when per = staff: {\"ids\": [...], \"site_id\": ..., "
                       "\"title\": ..., \"role\": ...} (all given conditions hold; {}: every "
                       "active staff member)"})
    staff_field = fields.String(allow_none=True, validate=validate.Length(min=1, max=100), metadata={
        "description": "The record field naming the person when per = staff: staff_id (default), "
                       "created_by (the filing user's staff member) or data.<field> (a staff or "
                       "user id, e.g. data.inspector_id)"})
    working_days = fields.Boolean(allow_none=True, metadata={
        "description": "Periods without working time in the tenant's business calendar (weekends, "
                       "holidays) are not obligations (outcome not_required)"})
    next_check_at = fields.AwareDateTime(dump_only=True, allow_none=True,
                                         metadata={"description": "Deadline of the next period to judge"})
    created_by = fields.UUID(dump_only=True, allow_none=True)
    created_at = fields.AwareDateTime(dump_only=True)
    updated_at = fields.AwareDateTime(dump_only=True)


class ScheduleQuery(PageArgs):
    kind = fields.String(validate=validate.Length(min=1, max=100))
    site_id = fields.UUID()
    active = fields.Boolean()


class ComplianceQuery(Schema):
    since = fields.AwareDateTime(validate=utc_instant, metadata={"description": "Default: the schedule's start"})
    until = fields.AwareDateTime(validate=utc_instant, metadata={"description": "Default: now"})
    staff_id = fields.UUID(metadata={"description": "Per-staff schedules: only this person"})

    @validates_schema
    def _ordered(self, data, **kwargs):
        if data.get("since") and data.get("until") and data["since"] >= data["until"]:
            raise ValidationError("'since' must be before 'until'.", "since")


class StaffPeriodSchema(Schema):
    staff_id = fields.UUID()
    code = fields.String()
    name = fields.String()
    count = fields.Integer(metadata={"description": "This person's matching records in the period"})
    outcome = fields.String(metadata={"description": "met, missed or open"})


class SchedulePeriodSchema(Schema):
    start = fields.AwareDateTime()
    end = fields.AwareDateTime()
    deadline = fields.AwareDateTime(metadata={"description": "end + grace: missed after this"})
    outcome = fields.String(metadata={
        "description": "met, missed, open, or not_required (working_days: no working time in it); "
                       "per staff: missed when anyone missed it"})
    record_id = fields.UUID(allow_none=True, metadata={"description": "The first matching record"})
    count = fields.Integer(metadata={"description": "Matching records in the period (per staff: "
                                                    "of the obligated people)"})
    staff = fields.List(fields.Nested(StaffPeriodSchema), metadata={
        "description": "Per-staff schedules: each obligated person's count and outcome"})


class ComplianceSummarySchema(Schema):
    met = fields.Integer()
    missed = fields.Integer()
    open = fields.Integer()
    not_required = fields.Integer(metadata={"description": "Schedules with working_days only"})


class StaffSummarySchema(Schema):
    staff_id = fields.UUID()
    code = fields.String()
    name = fields.String()
    met = fields.Integer()
    missed = fields.Integer()
    open = fields.Integer()


class ComplianceSchema(Schema):
    schedule_id = fields.UUID()
    since = fields.AwareDateTime()
    until = fields.AwareDateTime()
    summary = fields.Nested(ComplianceSummarySchema)
    periods = fields.List(fields.Nested(SchedulePeriodSchema))
    staff = fields.List(fields.Nested(StaffSummarySchema), metadata={
        "description": "Per-staff schedules: each person's periods met, missed and open"})


def get_schedule(schedule_id: uuid.UUID) -> Schedule:
    """The current tenant's schedule or 404."""
    schedule = request_session().scalar(select(Schedule).where(Schedule.id == schedule_id))
    if schedule is None:
        abort(404, message="Schedule not found.")
    return schedule


@contextmanager
def invalid_as_422():
    """Turn :class:`ScheduleInvalid` into a 422 that changed nothing."""
    try:
        yield
    except ScheduleInvalid as exc:
        request_session().rollback()
        abort(422, message=exc.message, errors={"json": exc.errors})


@blp.route("")
class Schedules(MethodView):
    @require("read")
    @blp.arguments(ScheduleQuery(), location="query")
    @blp.response(200, ScheduleSchema(many=True), headers=PAGINATION_HEADER_DOC)
    def get(self, args):
        """List the recurring obligations, by title."""
        stmt = select(Schedule).order_by(Schedule.title, Schedule.id)
        for name in ("kind", "site_id", "active"):
            if name in args:
                stmt = stmt.where(getattr(Schedule, name) == args[name])
        headers: dict = {}
        return paginate(request_session(), stmt, args, headers), 200, headers

    @require("manage")
    @blp.arguments(ScheduleSchema())
    @blp.created(ScheduleSchema)
    @blp.alt_response(409, description="A schedule with this key exists")
    def post(self, body):
        """Create a recurring obligation."""
        session = request_session()
        if body.get("key") and session.scalar(select(Schedule.id).where(Schedule.key == body["key"])):
            abort(409, message=f"A schedule with key {body['key']!r} exists.")
        with invalid_as_422():
            schedule = create_schedule(session, kinds=enabled_kinds(), actor_id=actor_id(), **body)
        session.commit()
        return schedule


@blp.route("/<uuid:schedule_id>")
class ScheduleById(MethodView):
    @require("read")
    @blp.etag
    @blp.response(200, ScheduleSchema)
    def get(self, schedule_id):
        """Get a recurring obligation."""
        return get_schedule(schedule_id)

    @require("manage")
    @blp.etag
    @blp.arguments(ScheduleSchema(partial=True))
    @blp.response(200, ScheduleSchema)
    def patch(self, body, schedule_id):
        """Change a recurring obligation (needs If-Match). Changing its rule, start, kind,
        site, standard, grace or quota (min_count, per, staff, staff_field, working_days)
        judges periods from now on."""
        session = request_session()
        schedule = get_schedule(schedule_id)
        blp.check_etag(schedule, ScheduleSchema)
        with invalid_as_422():
            update_schedule(session, schedule, body, kinds=enabled_kinds(), actor_id=actor_id())
        session.commit()
        return schedule

    @require("manage")
    @blp.etag
    @blp.response(204)
    def delete(self, schedule_id):
        """Delete a recurring obligation (needs If-Match); its history stays in the audit trail."""
        session = request_session()
        schedule = get_schedule(schedule_id)
        blp.check_etag(schedule, ScheduleSchema)
        audit(session, "schedules", schedule.id, "deleted", actor_id())
        session.delete(schedule)
        session.commit()


@blp.route("/<uuid:schedule_id>/compliance")
class ScheduleCompliance(MethodView):
    @require("read")
    @blp.arguments(ComplianceQuery(), location="query")
    @blp.response(200, ComplianceSchema)
    def get(self, args, schedule_id):
        """The periods of ``[since, until)`` with their outcome (met, missed, open,
        not_required), their count of records and the record that met each; per staff, each
        person's count and outcome. At most 1000 periods (per staff: 20,000 period × person
        cells): narrow the window, or pick one person with ``staff_id``, for more."""
        session = request_session()
        schedule = get_schedule(schedule_id)
        try:
            return compliance(session, schedule, args.get("since"), args.get("until"),
                              staff_id=args.get("staff_id"))
        except TooManyPeriods:
            abort(422, message=f"The window holds more than {MAX_PERIODS} periods (per staff: "
                               f"{MAX_CELLS} period × person cells): narrow 'since' and 'until' "
                               "or give 'staff_id'.")
