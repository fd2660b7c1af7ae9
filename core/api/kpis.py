"""KPIs: named metrics over a period, grouped by period, site, staff, kind, standard or
item; the metrics a tenant may ask for; and the two Pareto views (the standard items that
fail most, the complaint categories that recur most). Guide: ``docs/kpis.md``.

Every number is computed in SQL by the metric (``core.kpis``) with a constant number of
queries; this module parses the request, validates it (422 listing what is valid) and
adds labels: site and staff names (one query each) and item and standard titles (from the
standards cache, one query at most for items no longer in force).
"""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta, timezone
from typing import Any, Iterable, Mapping

from flask import request
from flask.views import MethodView
from flask_smorest import abort
from marshmallow import Schema, fields, validate
from sqlalchemy import func, select

from servq.core.api.args import Int
from servq.core.api.blueprint import Blueprint
from servq.core.api.context import enabled_kinds, require
from servq.core.api.standards import language
from servq.core.db.session import request_session
from servq.core.db import utcnow
from servq.core.kpis import (GROUPINGS, KpiError, KpiQuery, Metric, available_metrics, compute_kpis)
from servq.core.kpis.pareto import item_titles, pareto, titles_in
from servq.core.kpis.timing import failed_item_counts
from servq.core.models import Record, Site, Staff
from servq.core.plugins.app import enabled_plugin_ids, get_plugins
from servq.core.records.pipeline import utc_instant

URL = "/kpis"
blp = Blueprint("kpis", __name__, description="KPIs by period, site, staff, kind and standard "
                                                "item; Pareto views of failures and complaints.")

#: Days a request covers when it names no ``since``.
DEFAULT_DAYS = 30
#: The ``kind`` of complaint records (core's complaint kind).
COMPLAINT = "complaint"
#: Longest value accepted for a metric's own parameter.
PARAM_MAX = 200


# -- request schemas ---------------------------------------------------------------------


class PeriodArgs(Schema):
    """The period and the filters every KPI route takes."""

    since = fields.AwareDateTime(validate=utc_instant, metadata={
        "description": "Start of the period (inclusive), ISO 8601 with offset. Default: "
                       f"`until` − {DEFAULT_DAYS} days."})
    until = fields.AwareDateTime(validate=utc_instant, metadata={
        "description": "End of the period (exclusive). Default: now."})
    site_id = fields.UUID(metadata={"description": "Only records of this site."})
    staff_id = fields.UUID(metadata={"description": "Only records of this member of staff."})


class KpiArgs(PeriodArgs):
    metrics = fields.String(load_default="", validate=validate.Length(max=2000), metadata={
        "description": "Comma-separated metric names (`GET /kpis/metrics` lists those you "
                       "may use), e.g. `score,pass_rate`.", "example": "records,score"})
    group_by = fields.String(load_default="", validate=validate.Length(max=200), metadata={
        "description": f"Comma-separated groupings, in order: {', '.join(GROUPINGS)} (at most "
                       "one of day, week, month; periods are in the tenant's time zone).",
        "example": "site,month"})
    kind = fields.String(validate=validate.Length(min=1, max=100), metadata={
        "description": "Only records of this kind."})


class ParetoItemArgs(PeriodArgs):
    kind = fields.String(validate=validate.Length(min=1, max=100), metadata={
        "description": "Only records of this kind."})
    standard = fields.String(validate=validate.Length(min=1, max=100), metadata={
        "description": "Only the items of this standard (its code)."})
    limit = Int(min=1, max=1000, metadata={
        "description": "Return the first `limit` entries (shares still count them all)."})


class ParetoComplaintArgs(PeriodArgs):
    limit = Int(min=1, max=1000, metadata={
        "description": "Return the first `limit` entries (shares still count them all)."})


# -- response schemas --------------------------------------------------------------------


class KpiMetricSchema(Schema):
    name = fields.String(metadata={"description": "What `metrics=` names it by; a plugin's "
                                                  "metrics are `<plugin id>.<name>`"})
    title = fields.String(metadata={"description": "In the request's Accept-Language (en, zh)"})
    unit = fields.String(metadata={"description": "count, percent, seconds, score, per_1000, per_10000 "
                                                  "or points"})
    groupings = fields.List(fields.String(), metadata={"description": "The groupings it supports"})
    params = fields.Dict(keys=fields.String(), values=fields.String(), metadata={
        "description": "Query parameters it reads, with what each means"})
    description = fields.String(metadata={"description": "What it counts and how"})
    better = fields.String(allow_none=True, metadata={
        "description": "`higher` or `lower`: which way is better (null: neither)"})
    plugin = fields.String(allow_none=True, metadata={"description": "The plugin that contributes it"})


class KpiRowSchema(Schema):
    group = fields.Dict(keys=fields.String(), values=fields.String(allow_none=True), metadata={
        "description": "The row's key, one entry per grouping: a tenant-local period "
                       "(`2026-11-21`, `2026-W47`, `2026-11`), a site or staff id, a kind, a "
                       "standard code or an item key `<standard>/<item>`; null for records "
                       "without it"})
    values = fields.Dict(keys=fields.String(), values=fields.Raw(allow_none=True), metadata={
        "description": "One entry per metric asked: a number, null (nothing to measure) or, "
                       "for times, `{mean, median, p90, n}` and, for SERVQUAL, one entry per "
                       "dimension"})


class KpiResultSchema(Schema):
    since = fields.AwareDateTime(metadata={"description": "Start of the period (inclusive)"})
    until = fields.AwareDateTime(metadata={"description": "End of the period (exclusive)"})
    timezone = fields.String(metadata={"description": "The tenant calendar's time zone: what "
                                                      "day, week and month keys are local to"})
    group_by = fields.List(fields.String(), metadata={"description": "The groupings, in order"})
    metrics = fields.List(fields.Nested(KpiMetricSchema), metadata={"description": "The metrics asked"})
    rows = fields.List(fields.Nested(KpiRowSchema), metadata={
        "description": "One row per group key that has data, sorted by key (a single row "
                       "with an empty `group` when ungrouped)"})
    labels = fields.Dict(keys=fields.String(), values=fields.Dict(
        keys=fields.String(), values=fields.String(allow_none=True)), metadata={
        "description": "Names of the keys in `rows`: `site` and `staff` (id → name), `item` "
                       "and `standard` (key → title in the request's language), for the "
                       "groupings asked"})


class ParetoItemSchema(Schema):
    key = fields.String(metadata={"description": "`<standard code>/<item code>`"})
    standard_code = fields.String()
    item_code = fields.String()
    title = fields.String(allow_none=True, metadata={
        "description": "The item's title in the request's language"})
    count = fields.Integer(metadata={"description": "Outcomes 'fail' or 'breached'"})
    share = fields.Float(metadata={"description": "Percent of all failures"})
    cumulative_share = fields.Float(metadata={
        "description": "Percent of all failures of this entry and those before it"})


class ParetoItemsSchema(Schema):
    since = fields.AwareDateTime()
    until = fields.AwareDateTime()
    total = fields.Integer(metadata={"description": "Failures of every item in the period"})
    items = fields.List(fields.Nested(ParetoItemSchema), metadata={
        "description": "Most failures first (ties by key)"})


class ParetoCategorySchema(Schema):
    category = fields.String(allow_none=True, metadata={
        "description": "The complaints' `data.category`; null: none given"})
    count = fields.Integer()
    share = fields.Float(metadata={"description": "Percent of all complaints"})
    cumulative_share = fields.Float(metadata={
        "description": "Percent of all complaints of this entry and those before it"})


class ParetoComplaintsSchema(Schema):
    since = fields.AwareDateTime()
    until = fields.AwareDateTime()
    total = fields.Integer(metadata={"description": "Complaints in the period"})
    categories = fields.List(fields.Nested(ParetoCategorySchema), metadata={
        "description": "Most complaints first (ties by category, none given last)"})


# -- helpers -----------------------------------------------------------------------------


def tenant_metrics() -> dict[str, Metric]:
    """The metrics the current tenant may ask for (core's and its enabled plugins')."""
    session = request_session()
    return available_metrics(get_plugins(), enabled_plugin_ids(session))


def _query_error(errors: Mapping[str, list[str]], message: str = "The KPI request is not valid."):
    abort(422, message=message, errors={"query": dict(errors)})


def period_of(args: Mapping[str, Any]) -> tuple[datetime, datetime]:
    """``(since, until)`` of the request, in UTC: defaults, order checked (422 otherwise)."""
    until = args.get("until") or utcnow()
    since = args.get("since")
    if since is None:
        try:
            since = until - timedelta(days=DEFAULT_DAYS)
        except OverflowError:
            _query_error({"until": [f"Too early to go back {DEFAULT_DAYS} days; give 'since'."]})
    if since >= until:
        _query_error({"since": ["'since' must be before 'until'."]})
    return since.astimezone(timezone.utc), until.astimezone(timezone.utc)


def _split(text: str) -> list[str]:
    return [part.strip() for part in (text or "").split(",") if part.strip()]


def _check_kind(kind: str | None) -> None:
    if kind is not None:
        kinds = enabled_kinds()
        if kind not in kinds:
            _query_error({"kind": [f"Unknown kind {kind!r}; valid: {', '.join(sorted(kinds))}."]})


def build_query(args: Mapping[str, Any], group_by: Iterable[str] = (),
                params: Mapping[str, str] | None = None) -> KpiQuery:
    """A :class:`KpiQuery` for the current tenant from parsed query ``args``."""
    from servq.core.calendar.tenant import tenant_calendar

    session = request_session()
    since, until = period_of(args)
    _check_kind(args.get("kind"))
    return KpiQuery(session=session, since=since, until=until,
                    timezone=tenant_calendar(session).timezone, group_by=tuple(group_by),
                    site_id=args.get("site_id"), staff_id=args.get("staff_id"),
                    kind=args.get("kind"), params=dict(params or {}), now=utcnow())


def metric_params(names: list[str], metrics: Mapping[str, Metric], known: Iterable[str]) -> dict[str, str]:
    """The request's query parameters meant for the metrics ``names``: any parameter not
    in ``known`` (the route's own) must be one a named metric declares (422 otherwise)."""
    known = set(known)
    allowed = {param for name in names if name in metrics for param in metrics[name].params}
    # An unknown metric is reported by compute_kpis (listing the valid ones) rather than
    # its parameters here.
    strict = all(name in metrics for name in names)
    params, errors = {}, {}
    for key in request.args:
        if key in known:
            continue
        value = request.args.get(key, "")
        if key not in allowed:
            if not strict:
                continue
            valid = ", ".join(sorted(allowed)) or "none"
            errors[key] = [f"Unknown parameter; the metrics asked take: {valid}."]
        elif len(value) > PARAM_MAX:
            errors[key] = [f"At most {PARAM_MAX} characters."]
        else:
            params[key] = value
    if errors:
        _query_error(errors)
    return params


def _uuids(values: Iterable[str | None]) -> list[uuid.UUID]:
    out = []
    for value in values:
        try:
            out.append(uuid.UUID(str(value)))
        except ValueError:
            continue
    return out


def standard_titles(session, codes: Iterable[str], lang: str) -> dict[str, str | None]:
    """``{standard code: title}`` of the tenant's versions in force (standards cache)."""
    from servq.core.standards.store import tenant_state

    in_force = tenant_state(session).in_force
    return {code: titles_in(in_force[code].version.document.get("title"), lang)
            if code in in_force else None for code in set(codes)}


def labels_for(session, group_by: tuple[str, ...], rows: list[dict], lang: str) -> dict[str, dict]:
    """Names of the ids and codes in ``rows``: one query for sites, one for staff."""
    labels: dict[str, dict] = {}

    def keys_of(grouping: str) -> set[str]:
        return {row["group"][grouping] for row in rows if row["group"].get(grouping) is not None}

    for grouping, model in (("site", Site), ("staff", Staff)):
        if grouping in group_by:
            ids = _uuids(keys_of(grouping))
            names = session.execute(select(model.id, model.name).where(model.id.in_(ids))) if ids else ()
            labels[grouping] = {str(id_): name for id_, name in names}
    if "item" in group_by:
        labels["item"] = item_titles(session, keys_of("item"), lang)
    if "standard" in group_by:
        labels["standard"] = standard_titles(session, keys_of("standard"), lang)
    return labels


def complaint_category_counts(q: KpiQuery) -> list[tuple[str | None, int]]:
    """``[(category, count)]`` of the period's live complaints (``data.category``; an
    empty one is ``None``), counted in SQL."""
    category = func.nullif(Record.data["category"].as_string(), "").label("category")
    stmt = (select(category, func.count().label("n"))
            .where(Record.kind == COMPLAINT, q.in_period(Record.occurred_at), *q.record_filters())
            .group_by(category))
    return [(row.category, row.n) for row in q.session.execute(stmt)]


# -- routes ------------------------------------------------------------------------------


KNOWN_ARGS = tuple(KpiArgs().fields)


@blp.route("")
class Kpis(MethodView):
    @require("read")
    @blp.arguments(KpiArgs(), location="query")
    @blp.response(200, KpiResultSchema)
    @blp.alt_response(422, description="An unknown metric, grouping, kind or parameter, a "
                                       "grouping a metric cannot do, or `since` not before "
                                       "`until`: `errors.query` lists the valid ones")
    def get(self, args):
        """Compute KPIs over a period, grouped.

        `metrics` names one or more metrics (`GET /kpis/metrics`), `group_by` zero or more
        groupings; each row holds the metrics of one group key. Other query parameters are
        passed to the metrics that declare them (`params` in `GET /kpis/metrics`), e.g.
        `per_kind` of `complaint_rate`.
        """
        metrics = tenant_metrics()
        names = _split(args["metrics"])
        params = metric_params(names, metrics, KNOWN_ARGS)
        q = build_query(args, _split(args["group_by"]), params)
        try:
            result = compute_kpis(q, metrics, names)
        except KpiError as error:
            _query_error(error.errors, str(error))
        lang = language()
        return {
            "since": q.since, "until": q.until, "timezone": q.timezone,
            "group_by": list(q.group_by),
            "metrics": [metrics[name].describe(lang) for name in dict.fromkeys(names)],
            "rows": result["rows"],
            "labels": labels_for(q.session, q.group_by, result["rows"], lang),
        }


@blp.route("/metrics")
class KpiMetrics(MethodView):
    @require("read")
    @blp.response(200, KpiMetricSchema(many=True))
    def get(self):
        """List the metrics this tenant may ask for.

        Core's metrics and those of the plugins the tenant has enabled, with titles in the
        request's Accept-Language (en or zh), units, groupings and parameters.
        """
        lang = language()
        return [metric.describe(lang) for metric in tenant_metrics().values()]


@blp.route("/pareto/items")
class ParetoItems(MethodView):
    @require("read")
    @blp.arguments(ParetoItemArgs(), location="query")
    @blp.response(200, ParetoItemsSchema)
    def get(self, args):
        """Pareto of the standard items that fail most.

        Failed and breached outcomes per item of the period's records (the `failed_items`
        metric grouped by item), most first, with each item's share and cumulative share
        of all failures and its title in the request's Accept-Language.
        """
        params = {"standard": args["standard"]} if args.get("standard") else {}
        q = build_query(args, ("item",), params)
        total, entries = pareto((key[0], n) for key, n in failed_item_counts(q).items())
        entries = entries[:args.get("limit") or len(entries)]
        titles = item_titles(q.session, [entry["key"] for entry in entries], language())
        for entry in entries:
            entry["standard_code"], _, entry["item_code"] = entry["key"].partition("/")
            entry["title"] = titles.get(entry["key"])
        return {"since": q.since, "until": q.until, "total": total, "items": entries}


@blp.route("/pareto/complaints")
class ParetoComplaints(MethodView):
    @require("read")
    @blp.arguments(ParetoComplaintArgs(), location="query")
    @blp.response(200, ParetoComplaintsSchema)
    def get(self, args):
        """Pareto of the complaint categories that recur most.

        The period's complaints (core's `complaint` kind) counted per `data.category`,
        most first, with each category's share and cumulative share.
        """
        q = build_query(args)
        total, entries = pareto(complaint_category_counts(q))
        entries = entries[:args.get("limit") or len(entries)]
        categories = [{"category": entry.pop("key"), **entry} for entry in entries]
        return {"since": q.since, "until": q.until, "total": total, "categories": categories}
