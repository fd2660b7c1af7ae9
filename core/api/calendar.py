"""The tenant's business calendar: time zone, working hours, holidays.

``GET /calendar`` shows the calendar the tenant's deadlines count with (the default one
while it has set none, ``is_default: true``); ``PUT /calendar`` replaces it (role
``manage``; ``If-Match`` with the ETag of the GET once a calendar is stored).
``GET /calendar/preview`` answers "when is this due" and "how much working time lies
between these two instants"; ``GET /calendar/days`` lists the working hours of a range
of days with the public holiday of each, so a tenant can check its calendar.
"""

from __future__ import annotations

import datetime as dt

from flask import request
from flask.views import MethodView
from flask_smorest import abort
from marshmallow import Schema, ValidationError, fields, validate, validates_schema
from sqlalchemy import select
from werkzeug.http import quote_etag

from servq.core.api.blueprint import Blueprint, lock_for_write
from servq.core.api.context import actor_id, require
from servq.core.audit import audit
from servq.core.calendar import WALL, CalendarSchema, LimitError, NoWorkingTime, due, parse_limit
from servq.core.calendar.schema import format_span
from servq.core.calendar.model import BusinessCalendar
from servq.core.calendar.tenant import forget_calendar, load_calendar, tenant_calendar
from servq.core.db.session import request_session
from servq.core.models import TenantCalendar
from servq.core.records.pipeline import utc_instant

URL = "/calendar"
blp = Blueprint("calendar", __name__,
                description="The tenant's business calendar: time zone, working hours, holidays.")

MAX_DAYS_LISTED = 92
# Previews look at most ten years (the longest limit) within these years, so a request
# cannot make the server walk the holidays of centuries.
MAX_SPAN = dt.timedelta(days=3660)
FIRST_YEAR, LAST_YEAR = 1970, 2199


def _in_years(value) -> None:
    if not FIRST_YEAR <= value.year <= LAST_YEAR:
        raise ValidationError(f"Give a date between {FIRST_YEAR} and {LAST_YEAR}.")


class CalendarOutSchema(Schema):
    timezone = fields.String(metadata={"description": "IANA time zone"})
    working_hours = fields.Dict(keys=fields.String(), values=fields.List(fields.String()),
                                metadata={"description": "Spans per weekday, e.g. {mon: ['09:00-12:00', '13:00-18:00']}"})
    country = fields.String(allow_none=True, metadata={"description": "Public holidays of this country"})
    subdivision = fields.String(allow_none=True)
    extra_holidays = fields.List(fields.String())
    extra_working_days = fields.List(fields.String())
    makeup_day_hours = fields.List(fields.String(), allow_none=True,
                                   metadata={"description": "Hours of extra and moved working days"})
    is_default = fields.Boolean(metadata={"description": "True while the tenant has set no calendar"})
    updated_at = fields.AwareDateTime(allow_none=True)


class CalendarInSchema(CalendarSchema):
    """A whole calendar (PUT replaces it); the same fields as a manifest's ``[calendar]``."""


class PreviewQuery(Schema):
    start = fields.AwareDateTime(required=True, validate=[utc_instant, _in_years],
                                 metadata={"description": "The instant the clock starts"})
    limit = fields.String(validate=validate.Length(min=1, max=50),
                          metadata={"description": "A limit such as '4h' or '5 working days'"})
    end = fields.AwareDateTime(validate=[utc_instant, _in_years],
                               metadata={"description": "Count the working time from start to here"})

    @validates_schema
    def _something_to_answer(self, data, **kwargs):
        if "limit" not in data and "end" not in data:
            raise ValidationError("Give a limit (when is it due?) or an end (how much working time?).")
        if "start" in data and "end" in data and abs(data["end"] - data["start"]) > MAX_SPAN:
            raise ValidationError("start and end may be at most ten years apart.", "end")


class PreviewSchema(Schema):
    timezone = fields.String()
    start = fields.AwareDateTime()
    working = fields.Boolean(metadata={"description": "Whether start is inside working hours"})
    next_working_moment = fields.AwareDateTime(
        metadata={"description": "When working time next runs (start itself when working)"})
    limit = fields.String(allow_none=True, metadata={"description": "The limit as read"})
    due = fields.AwareDateTime(allow_none=True)
    end = fields.AwareDateTime(allow_none=True)
    working_seconds = fields.Integer(allow_none=True,
                                     metadata={"description": "Working time from start to end"})
    wall_seconds = fields.Integer(allow_none=True, metadata={"description": "Real time from start to end"})


class DaysQuery(Schema):
    start = fields.Date(data_key="from", required=True, validate=_in_years,
                        metadata={"description": "First day (local)"})
    end = fields.Date(data_key="to", required=True, validate=_in_years,
                      metadata={"description": "Last day (local, included)"})

    @validates_schema
    def _range(self, data, **kwargs):
        if "start" in data and "end" in data:
            if data["end"] < data["start"]:
                raise ValidationError("'to' must not be before 'from'.", "to")
            if (data["end"] - data["start"]).days >= MAX_DAYS_LISTED:
                raise ValidationError(f"At most {MAX_DAYS_LISTED} days at a time.", "to")


class DaySchema(Schema):
    date = fields.Date()
    weekday = fields.String()
    working = fields.Boolean()
    hours = fields.List(fields.String(), metadata={"description": "Local working spans"})
    working_seconds = fields.Integer()
    holiday = fields.String(allow_none=True, metadata={"description": "Public holiday name, if any"})
    note = fields.String(allow_none=True,
                         metadata={"description": "extra holiday, extra working day, moved working day"})


def _current() -> tuple[dict, TenantCalendar | None]:
    """The response body of GET (not yet dumped) and the stored row (``None`` for the
    default calendar)."""
    session = request_session()
    row = session.scalar(select(TenantCalendar))
    if row is not None:
        document = row.document
    else:
        document, _ = load_calendar(session)
    body = {**{"makeup_day_hours": None}, **document, "is_default": row is None,
            "updated_at": row.updated_at if row is not None else None}
    return body, row


@blp.route("")
class Calendar(MethodView):
    @require("read")
    @blp.etag
    @blp.response(200, CalendarOutSchema)
    def get(self):
        """The tenant's business calendar (the default one while none is set)."""
        body, _ = _current()
        return body

    @require("manage")
    @blp.arguments(CalendarInSchema())
    @blp.response(200, CalendarOutSchema)
    @blp.alt_response(428, description="A calendar is stored: send If-Match with its ETag")
    @blp.alt_response(412, description="The calendar changed since the ETag was read")
    def put(self, body):
        """Set the business calendar. Needs If-Match once one is stored (not the first time)."""
        session = request_session()
        current, row = _current()
        if row is not None:
            lock_for_write(row)
            current, row = _current()
            if not request.if_match:
                abort(428, message="A calendar is stored: send If-Match with the ETag of GET /api/v1/calendar.")
            if blp._generate_etag(CalendarOutSchema().dump(current)) not in request.if_match:
                abort(412, message="The calendar changed since you read it; GET it again.")
        document = BusinessCalendar(**body).to_dict()
        if row is None:
            row = TenantCalendar(document=document, updated_by=actor_id())
            session.add(row)
            session.flush()
            audit(session, "calendars", row.id, "created", actor_id(), {"document": [None, document]})
        elif row.document != document:
            old = row.document
            row.document = document
            row.updated_by = actor_id()
            session.flush()
            audit(session, "calendars", row.id, "changed", actor_id(),
                  {key: [old.get(key), document.get(key)] for key in sorted(set(old) | set(document))
                   if old.get(key) != document.get(key)})
        session.commit()
        forget_calendar(session)
        out, _ = _current()
        return out, 200, {"ETag": quote_etag(blp._generate_etag(CalendarOutSchema().dump(out)))}


@blp.route("/preview")
class Preview(MethodView):
    @require("read")
    @blp.arguments(PreviewQuery(), location="query")
    @blp.response(200, PreviewSchema)
    def get(self, args):
        """When is ``limit`` after ``start`` due, and how much working time lies between
        ``start`` and ``end``, on the tenant's calendar. Answers are in its time zone."""
        calendar = tenant_calendar(request_session())
        zone = calendar.zone
        start = args["start"].astimezone(zone)
        out = {"timezone": calendar.timezone, "start": start, "limit": None, "due": None,
               "end": None, "working_seconds": None, "wall_seconds": None}
        try:
            out["working"] = calendar.is_working(start)
            out["next_working_moment"] = calendar.next_working_moment(start)
            if "limit" in args:
                limit = parse_limit(args["limit"])
                out["limit"] = str(limit)
                out["due"] = due(start, limit, calendar)
            if "end" in args:
                end = args["end"].astimezone(zone)
                out["end"] = end
                out["working_seconds"] = int(calendar.elapsed(start, end).total_seconds())
                out["wall_seconds"] = int(WALL.elapsed(start, end).total_seconds())
        except LimitError as exc:
            abort(422, message=str(exc), errors={"query": {"limit": [str(exc)]}})
        except (NoWorkingTime, OverflowError) as exc:
            abort(422, message=f"No answer on this calendar: {exc}")
        return out


@blp.route("/days")
class Days(MethodView):
    @require("read")
    @blp.arguments(DaysQuery(), location="query")
    @blp.response(200, DaySchema(many=True))
    def get(self, args):
        """The working hours of each local day from ``from`` to ``to`` (at most 92 days),
        with public holidays and moved working days named."""
        calendar = tenant_calendar(request_session())
        out = []
        day = args["start"]
        while day <= args["end"]:
            spans = calendar.hours_on(day)
            out.append({
                "date": day, "weekday": day.strftime("%a").lower(),
                "working": bool(calendar.working_intervals(day)),
                "hours": [format_span(s) for s in spans],
                "working_seconds": int(sum((b - a for a, b in calendar.working_intervals(day)),
                                           dt.timedelta(0)).total_seconds()),
                "holiday": calendar.holiday_name(day),
                "note": calendar.day_note(day),
            })
            day += dt.timedelta(days=1)
        return out
