"""Mystery-shopper visits: an example third-party servq plugin."""

from __future__ import annotations

import random
from datetime import timedelta

from flask.views import MethodView
from flask_smorest import Blueprint
from marshmallow import Schema, fields, validate
from sqlalchemy import select

from servq import (Record, RecordKind, TenantPlugin, create_record, enabled_plugin_ids, get_plugins,
                   hookimpl, request_session, require, utcnow)

PLUGIN_ID = "example"
VISIT = "example.mystery_visit"


class MysteryVisitData(Schema):
    """``data`` of a mystery-shopper visit."""

    shopper = fields.String(required=True, validate=validate.Length(min=1, max=100))
    score = fields.Integer(required=True, validate=validate.Range(min=0, max=100))
    remarks = fields.String(load_default="", validate=validate.Length(max=2000))
    greeted = fields.Boolean(load_default=None, allow_none=True)


class ExampleConfig(Schema):
    """A tenant's configuration of this plugin."""

    target_score = fields.Integer(load_default=80, validate=validate.Range(min=0, max=100))
    currency = fields.String(load_default="CNY", validate=validate.Length(equal=3))


class VisitSummary(Schema):
    visits = fields.Integer()
    average_score = fields.Float(allow_none=True)
    target_score = fields.Integer()
    on_target = fields.Boolean(allow_none=True)


blp = Blueprint(PLUGIN_ID, __name__, description="Mystery-shopper visits (example plugin).")


@blp.route("/visits/summary")
class VisitsSummary(MethodView):
    @require("read")
    @blp.response(200, VisitSummary)
    def get(self):
        """Number and average score of the tenant's visits, against its target."""
        session = request_session()
        # The score lives in JSON data, whose SQL differs between SQLite and PostgreSQL;
        # this example keeps to portable SQL and a bounded read.
        scores = [data["score"] for data in session.scalars(
            select(Record.data).where(Record.kind == VISIT, Record.deleted_at.is_(None))
            .limit(10_000))]
        config = session.scalar(
            select(TenantPlugin.configuration).where(TenantPlugin.plugin_id == PLUGIN_ID)) or {}
        target = config.get("target_score", 80)
        average = sum(scores) / len(scores) if scores else None
        return {"visits": len(scores), "average_score": average, "target_score": target,
                "on_target": None if average is None else average >= target}


@hookimpl
def register_record_kinds():
    return [RecordKind(name=VISIT, schema=MysteryVisitData,
                       title={"en": "Mystery-shopper visit", "zh": "神秘顾客访问"},
                       description="A visit by a mystery shopper, scored from 0 to 100.",
                       statuses=("submitted", "reviewed"))]


@hookimpl
def register_blueprints():
    return [blp]


@hookimpl
def register_config_schema():
    return ExampleConfig


@hookimpl
def register_standards():
    # (package, folder): every *.toml there is a standard (ship the folder as package data).
    return [("servq_example", "standards")]


def load_demo(session, tenant) -> None:
    """Demo data (``servq tenants onboard FILE --demo``): four weeks of visits, one a day,
    each scored against the shipped standard as of the day it happened."""
    if session.scalar(select(Record.id).where(Record.kind == VISIT).limit(1)):
        return  # loaded already
    kinds = get_plugins().kinds_for(enabled_plugin_ids(session))
    rng = random.Random(2026)  # the same demo every time
    start = utcnow().replace(hour=2, minute=0, second=0, microsecond=0) - timedelta(days=28)
    for day in range(28):
        at = start + timedelta(days=day)
        create_record(session, kinds, {
            "kind": VISIT, "occurred_at": at,
            "data": {"shopper": f"S{day % 3 + 1}", "score": rng.randint(60, 100),
                     "greeted": rng.random() > 0.2,
                     "remarks": "问别人去" if rng.random() < 0.1 else "服务很好"}}, None, now=at)


@hookimpl
def register_demo_data():
    return [load_demo]
