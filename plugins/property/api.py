"""The property plugin's own routes, mounted by core under ``/api/v1/property/``.

``GET /sites/<site_id>/obligations`` answers the estate manager's question "is this
estate keeping up with its recurring obligations?": the schedules onboarding created for
the site (keys ``property.…``), each with its compliance over a window. Compliance is
core's :func:`core.deadlines.schedules.compliance` (one query per schedule; a site has a handful),
summarised so a dashboard need not page through every period. Core answers 404 to a
tenant that has not enabled the plugin (its blueprint gate), so the route never runs for
one.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from dateutil.relativedelta import relativedelta
from flask.views import MethodView
from marshmallow import Schema, ValidationError, fields, validates_schema
from sqlalchemy import select

from servq import (MAX_PERIODS, Blueprint, Schedule, Site, TooManyPeriods, abort, compliance,
                          request_session, require, utc_instant, utcnow)
from servq.plugins.property.onboarding import PLUGIN

#: The plugin's schedules have keys ``property.<what>.<site id>`` (see onboarding.py).
KEY_PREFIX = f"{PLUGIN}."
#: The default window: this many months back from ``until``.
DEFAULT_MONTHS = 12

blp = Blueprint(PLUGIN, __name__, description="Property management: an estate's obligations.")


class PropertyObligationsQuery(Schema):
    since = fields.AwareDateTime(validate=utc_instant, metadata={
        "description": "Start of the window (default: 12 months before 'until')"})
    until = fields.AwareDateTime(validate=utc_instant, metadata={"description": "End of the window (default: now)"})

    @validates_schema
    def _ordered(self, data, **kwargs):
        if data.get("since") and data.get("until") and data["since"] >= data["until"]:
            raise ValidationError("'since' must be before 'until'.", "since")


class PropertyPeriodSchema(Schema):
    start = fields.AwareDateTime()
    end = fields.AwareDateTime()


class PropertyObligationComplianceSchema(Schema):
    periods = fields.Integer(metadata={"description": "Periods overlapping the window"})
    met = fields.Integer()
    missed = fields.Integer()
    open = fields.Integer(metadata={"description": "Not met yet, still in time"})
    percent = fields.Float(allow_none=True, metadata={
        "description": "100 × met / (met + missed), 2 decimals; null when nothing is decided"})
    last_missed = fields.Nested(PropertyPeriodSchema, allow_none=True,
                                metadata={"description": "The latest missed period in the window"})


class PropertyObligationSchema(Schema):
    schedule_id = fields.UUID()
    key = fields.String()
    title = fields.String()
    kind = fields.String(metadata={"description": "The record kind that meets a period"})
    facility = fields.String(allow_none=True, metadata={"description": "null for the survey round"})
    check = fields.String(allow_none=True)
    rrule = fields.String()
    active = fields.Boolean()
    compliance = fields.Nested(PropertyObligationComplianceSchema)


class PropertySiteObligationsSchema(Schema):
    site_id = fields.UUID()
    since = fields.AwareDateTime()
    until = fields.AwareDateTime()
    obligations = fields.List(fields.Nested(PropertyObligationSchema))


def window(args: dict[str, Any], now: datetime) -> tuple[datetime, datetime]:
    """``[since, until)`` of the request: until defaults to now, since to 12 months earlier;
    422 when the result is empty (e.g. only a ``since`` in the future)."""
    until = args.get("until") or now
    since = args.get("since") or until - relativedelta(months=DEFAULT_MONTHS)
    if since >= until:
        abort(422, message="'since' must be before 'until'.",
              errors={"query": {"since": ["'since' must be before 'until' (default: now)."]}})
    return since, until


def summarise(report: dict[str, Any]) -> dict[str, Any]:
    """Counts, percent of decided periods met, and the latest missed period."""
    counts = report["summary"]
    decided = counts["met"] + counts["missed"]
    missed = [p for p in report["periods"] if p["outcome"] == "missed"]
    return {"periods": len(report["periods"]), **counts,
            "percent": round(100 * counts["met"] / decided, 2) if decided else None,
            "last_missed": ({"start": missed[-1]["start"], "end": missed[-1]["end"]}
                            if missed else None)}


@blp.route("/sites/<uuid:site_id>/obligations")
class SiteObligations(MethodView):
    @require("read")
    @blp.arguments(PropertyObligationsQuery(), location="query")
    @blp.response(200, PropertySiteObligationsSchema)
    def get(self, args, site_id: uuid.UUID):
        """The site's recurring obligations (created at onboarding) and how well each was
        kept in ``[since, until)``: periods met, missed and still open. At most 1000
        periods per obligation: narrow the window for more."""
        session = request_session()
        if session.scalar(select(Site.id).where(Site.id == site_id)) is None:
            abort(404, message="Site not found.")
        now = utcnow()
        since, until = window(args, now)
        schedules = list(session.scalars(
            select(Schedule).where(Schedule.site_id == site_id, Schedule.key.startswith(KEY_PREFIX))
            .order_by(Schedule.title, Schedule.id)))
        obligations = []
        for schedule in schedules:
            try:
                report = compliance(session, schedule, since, until, now=now)
            except TooManyPeriods:
                abort(422, message=f"The window holds more than {MAX_PERIODS} periods of "
                                   f"{schedule.title!r}: narrow 'since' and 'until'.")
            match = schedule.match or {}
            obligations.append({
                "schedule_id": schedule.id, "key": schedule.key, "title": schedule.title,
                "kind": schedule.kind, "facility": match.get("facility"), "check": match.get("check"),
                "rrule": schedule.rrule, "active": schedule.active, "compliance": summarise(report)})
        return {"site_id": site_id, "since": since, "until": until, "obligations": obligations}
