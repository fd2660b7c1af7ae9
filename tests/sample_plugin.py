"""A sample plugin implementing every hook of :mod:`core.plugins.hookspecs`.

Tests load it with ``app_config["EXTRA_PLUGINS"] = [("sample", tests.sample_plugin)]``;
its id is therefore ``sample``. Event hooks and the job append to :data:`CALLS` so tests
can assert what ran, for which tenant and with which arguments.
"""

from __future__ import annotations

import uuid

import click
from flask import g
from flask.views import MethodView
from flask_smorest import Blueprint
from marshmallow import Schema, fields, validate
from sqlalchemy import func, select

from servq.core.api.context import require
from servq.core.db import utcnow
from servq.core.kpis import KpiError, KpiQuery, Metric
from servq.core.models import Record, TenantPlugin
from servq.core.plugins import Job, RecordKind, hookimpl
from servq.core.scoring import Outcome, RuleInputError, RuleResult, RuleType

PLUGIN_ID = "sample"
KIND = "sample.note"

#: ``(hook or job name, tenant id, details)`` for every call, in order; tests clear it.
CALLS: list[tuple] = []


def calls(name: str) -> list[tuple]:
    """The recorded calls of one hook or job."""
    return [c for c in CALLS if c[0] == name]


class NoteData(Schema):
    """``data`` of a ``sample.note`` record."""

    text = fields.String(required=True, validate=validate.Length(min=1, max=500))
    priority = fields.Integer(load_default=3, validate=validate.Range(min=1, max=5))
    reviewed = fields.Boolean(load_default=False)


class SampleConfig(Schema):
    """A tenant's configuration of the sample plugin."""

    greeting = fields.String(load_default="hello", validate=validate.Length(min=1, max=50))
    max_priority = fields.Integer(load_default=5, validate=validate.Range(min=1, max=5))


class SummarySchema(Schema):
    tenant = fields.String()
    notes = fields.Integer()
    greeting = fields.String()


blp = Blueprint(PLUGIN_ID, __name__, description="The sample plugin's own routes.")


@blp.route("/summary")
class Summary(MethodView):
    @require("read")
    @blp.response(200, SummarySchema)
    def get(self):
        """How many sample notes the tenant has, and its configured greeting."""
        session = g.db
        notes = session.scalar(
            select(func.count()).select_from(Record)
            .where(Record.kind == KIND, Record.deleted_at.is_(None))
        )
        config = session.scalar(
            select(TenantPlugin.configuration).where(TenantPlugin.plugin_id == PLUGIN_ID)
        ) or {}
        return {"tenant": g.tenant.slug, "notes": notes,
                "greeting": config.get("greeting", "hello")}


@click.command("hello")
@click.option("--name", default="world", help="Whom to greet.")
def hello(name):
    """Greet someone (proves plugin commands reach the ``servq`` command line)."""
    CALLS.append(("hello", None, {"name": name}))
    click.echo(f"sample says hello, {name}")


def mark_reviewed(session, record_id: str) -> bool:
    """Job: mark a note reviewed. Idempotent: a second run finds it reviewed already."""
    record = session.get(Record, (session.tenant_id, _uuid(record_id)))
    CALLS.append(("mark_reviewed", session.tenant_id, {"record_id": record_id}))
    if record is None or record.data.get("reviewed"):
        return False
    record.data = {**record.data, "reviewed": True}
    session.commit()
    return True


def unregistered_job(session):
    """Not returned by ``register_jobs``: enqueueing it must be refused."""
    CALLS.append(("unregistered_job", session.tenant_id, {}))


def load_demo(session, tenant):
    """Demo loader: one welcome note, once (deterministic and idempotent)."""
    CALLS.append(("load_demo", tenant.id, {}))
    exists = session.scalar(select(Record.id).where(Record.kind == KIND).limit(1))
    if exists is None:
        session.add(Record(kind=KIND, occurred_at=utcnow(), status="open",
                           data={"text": f"Welcome to {tenant.name}", "priority": 1,
                                 "reviewed": False}))


class EvenParams(Schema):
    """Parameters of the ``sample.even`` rule type."""

    field = fields.String(validate=validate.Length(min=1, max=200))


def compile_even(params, code):
    """``sample.even``: pass when the number at ``field`` is even; missing is n.a."""
    name = params.get("field", code)

    def evaluate(values, context):
        value = values.get(name)
        if value is None:
            return RuleResult(Outcome.NA, {"value": None})
        if isinstance(value, bool) or not isinstance(value, int):
            raise RuleInputError(f"an even check takes a whole number, not {value!r}")
        return RuleResult(Outcome.PASS if value % 2 == 0 else Outcome.FAIL, {"value": value})

    return evaluate


EVEN = RuleType("sample.even", EvenParams, compile_even, "Pass when a whole number is even.")


def even_records(q: KpiQuery) -> dict[tuple, int]:
    """KPI ``sample.even_records``: notes whose priority is even (and at least the
    ``min_priority`` parameter), counted in SQL."""
    try:
        floor = int(q.params.get("min_priority", 1))
    except ValueError:
        raise KpiError("min_priority is not a number.",
                       {"min_priority": ["A whole number from 1 to 5."]}) from None
    priority = Record.data["priority"].as_integer()
    keys = q.keys(time=Record.occurred_at, site=Record.site_id, staff=Record.staff_id)
    stmt = (select(*keys, func.count().label("n"))
            .where(Record.kind == KIND, priority % 2 == 0, priority >= floor,
                   q.in_period(Record.occurred_at), *q.record_filters())
            .group_by(*keys))
    out = {key: row.n for key, row in q.grouped(stmt).items()}
    if not q.group_by:
        out.setdefault((), 0)
    return out


EVEN_RECORDS = Metric(
    "sample.even_records", {"en": "Notes of even priority", "zh": "偶数优先级备注"}, "count",
    frozenset({"day", "week", "month", "site", "staff"}), even_records,
    description="Sample notes whose priority is an even number.",
    params={"min_priority": "Only notes of at least this priority (default 1)."}, better=None)


def _uuid(value) -> uuid.UUID:
    return value if isinstance(value, uuid.UUID) else uuid.UUID(str(value))


# -- hooks ---------------------------------------------------------------------------


@hookimpl
def register_record_kinds():
    return [RecordKind(name=KIND, schema=NoteData, title={"en": "Note", "zh": "备注"},
                       description="A free-text note (sample plugin).",
                       statuses=("open", "done"))]


@hookimpl
def register_blueprints():
    return [blp]


@hookimpl
def register_commands():
    return [hello]


@hookimpl
def register_jobs():
    return [Job("sample.mark_reviewed", mark_reviewed)]


@hookimpl
def register_demo_data():
    return [load_demo]


@hookimpl
def register_config_schema():
    return SampleConfig


@hookimpl
def tenant_onboarded(session, tenant, manifest):
    CALLS.append(("tenant_onboarded", tenant.id, {"manifest": manifest}))


@hookimpl
def record_created(session, record, actor_id):
    CALLS.append(("record_created", session.tenant_id,
                  {"record_id": record.id, "kind": record.kind, "actor_id": actor_id}))


@hookimpl
def record_changed(session, record, changes, actor_id):
    CALLS.append(("record_changed", session.tenant_id,
                  {"record_id": record.id, "changes": changes, "actor_id": actor_id}))


@hookimpl
def register_rule_types():
    return [EVEN]


@hookimpl
def register_standards():
    return [("tests", "sample_standards")]


@hookimpl
def record_evaluated(session, record, evaluations):
    CALLS.append(("record_evaluated", session.tenant_id,
                  {"record_id": record.id,
                   "standards": sorted((e.standard_code, e.standard_version, e.percent)
                                       for e in evaluations)}))


@hookimpl
def records_evaluated(session, evaluated):
    CALLS.append(("records_evaluated", session.tenant_id,
                  {"records": [(record.id, record.kind, [(e.standard_code, e.percent, len(e.items))
                                                         for e in evaluations])
                               for record, evaluations in evaluated]}))


@hookimpl
def register_event_types():
    return {"sample.noted": "A sample note was written (the sample plugin's own event type)."}


@hookimpl
def register_kpis():
    return [EVEN_RECORDS]
