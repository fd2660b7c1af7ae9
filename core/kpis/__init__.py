"""KPIs: named metrics computed in SQL over a period, grouped by time, site, staff, kind,
standard item or standard.

A :class:`Metric` is contributed through the ``register_kpis`` hook (core's own metrics by
:mod:`core.kpis.plugin`, an industry's by its plugin, named ``<plugin id>.<name>``). Its
``compute`` gets a :class:`KpiQuery` and returns ``{group key: value}``: the key is a tuple
with one string per grouping, in the order asked (``()`` when ungrouped); the value is a
number, ``None`` (nothing to measure) or a dict of numbers (``{"mean", "median", "p90"}``).
A metric runs a constant number of queries whatever the number of rows or groups.

:func:`compute_kpis` validates the request (an unknown metric or grouping, or a grouping a
metric cannot do, is a :class:`KpiError` listing the valid ones), runs each metric and
merges the results into rows, one per group key.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Callable, Iterable, Mapping

from sqlalchemy import literal
from sqlalchemy.sql import ColumnElement

from servq.core.kpis.sql import PERIODS, percentile, period

#: Every grouping a KPI request may name. ``item`` is a standard item (``code`` of the
#: standard and of the item: ``core.complaint/acknowledged_in_time``).
GROUPINGS = ("day", "week", "month", "site", "staff", "kind", "standard", "item")
#: Units a metric's value is expressed in.
UNITS = ("count", "percent", "seconds", "score", "per_1000", "per_10000", "points")


class KpiError(ValueError):
    """A KPI request names something that does not exist: ``errors`` says what, by field."""

    def __init__(self, message: str, errors: dict[str, list[str]]):
        super().__init__(message)
        self.errors = errors


@dataclass(frozen=True)
class Metric:
    """One KPI.

    :param name: ``records`` for core's, ``<plugin id>.<name>`` for a plugin's.
    :param title: ``{"en": ..., "zh": ...}``.
    :param unit: one of :data:`UNITS`.
    :param groupings: the groupings it supports (a subset of :data:`GROUPINGS`).
    :param compute: ``(KpiQuery) -> {group key: value}``.
    :param description: what it counts and how, in one or two sentences (English).
    :param params: query parameters it reads from :attr:`KpiQuery.params`, with what each means.
    :param better: ``"higher"`` or ``"lower"`` (reports use it to rank best and worst),
        ``None`` when neither.
    :param report: a plugin's metric that the weekly report's trend table shows, after
        core's, for the tenants that enabled the plugin (it must support ``week``).
    """

    name: str
    title: Mapping[str, str]
    unit: str
    groupings: frozenset[str]
    compute: Callable[["KpiQuery"], dict[tuple, Any]]
    description: str = ""
    params: Mapping[str, str] = field(default_factory=dict)
    better: str | None = "higher"
    report: bool = False
    plugin: str | None = None  # set by the registry: the plugin that contributed it

    def describe(self, language: str = "en") -> dict[str, Any]:
        return {"name": self.name, "title": self.title.get(language) or self.title.get("en"),
                "unit": self.unit, "groupings": sorted(self.groupings, key=GROUPINGS.index),
                "description": self.description, "params": dict(self.params),
                "better": self.better, "plugin": self.plugin}


@dataclass
class KpiQuery:
    """What one metric is asked: the tenant-scoped ``session``, the half-open period
    ``[since, until)`` (UTC-aware), the tenant's ``timezone`` (periods are tenant-local),
    ``group_by`` (a tuple of :data:`GROUPINGS`), the filters (``site_id``, ``staff_id``,
    ``kind``: ``None`` for all) and the metric ``params`` of the request."""

    session: Any
    since: datetime
    until: datetime
    timezone: str
    group_by: tuple[str, ...] = ()
    site_id: uuid.UUID | None = None
    staff_id: uuid.UUID | None = None
    kind: str | None = None
    params: Mapping[str, str] = field(default_factory=dict)
    now: datetime | None = None

    @property
    def dialect(self) -> str:
        return self.session.get_bind().dialect.name

    def period(self, column) -> ColumnElement:
        """The key of the tenant-local time grouping asked for (day, week or month)."""
        unit = next((name for name in self.group_by if name in PERIODS), None)
        if unit is None:
            raise ValueError("no time grouping asked")
        return period(column, unit, self.timezone, self.dialect)

    def percentile(self, column, fraction: float) -> ColumnElement:
        return percentile(column, fraction, self.dialect)

    def keys(self, *, time=None, site=None, staff=None, kind=None, standard=None,
             item=None) -> list[ColumnElement]:
        """The SELECT / GROUP BY columns for :attr:`group_by`, in its order, labelled
        ``g0, g1, …``. Pass the column each grouping reads (``time``: the timestamp that
        places a row in a period; ``item``: an expression of the item's key). A grouping
        asked for but not passed raises ``ValueError`` (the metric does not support it:
        declare ``groupings`` accordingly)."""
        sources = {"site": site, "staff": staff, "kind": kind, "standard": standard, "item": item}
        out = []
        for position, name in enumerate(self.group_by):
            column = time if name in PERIODS else sources[name]
            if column is None:
                raise ValueError(f"this metric cannot be grouped by {name}")
            out.append((self.period(column) if name in PERIODS else column).label(f"g{position}"))
        return out

    def in_period(self, column) -> ColumnElement:
        """``since <= column < until``."""
        return (column >= self.since) & (column < self.until)

    def record_filters(self, record=None) -> list[ColumnElement]:
        """The WHERE clauses every record-based metric applies: not deleted, and the
        request's site, staff and kind filters (on ``record``, default :class:`Record`)."""
        from servq.core.models import Record

        record = record if record is not None else Record
        clauses = [record.deleted_at.is_(None)]
        if self.site_id is not None:
            clauses.append(record.site_id == self.site_id)
        if self.staff_id is not None:
            clauses.append(record.staff_id == self.staff_id)
        if self.kind is not None:
            clauses.append(record.kind == self.kind)
        return clauses

    def grouped(self, statement) -> dict[tuple, Any]:
        """Run ``statement`` (its first ``len(group_by)`` columns are :meth:`keys`) and
        return ``{key tuple: row}``; keys are strings (UUIDs as text), ``None`` stays
        ``None``."""
        width = len(self.group_by)
        out: dict[tuple, Any] = {}
        for row in self.session.execute(statement):
            out[tuple(key_text(value) for value in row[:width])] = row
        return out


def key_text(value: Any) -> str | None:
    if value is None:
        return None
    return str(value)


def no_key() -> ColumnElement:
    return literal(None)


# -- the registry -------------------------------------------------------------------------


def registered_metrics(plugins) -> dict[str, Metric]:
    """Every metric of the loaded plugins, by name (computed once per app)."""
    cached = getattr(plugins, "_kpi_metrics", None)
    if cached is not None:
        return cached
    metrics: dict[str, Metric] = {}
    for plugin_id, contributed in plugins.contributions("register_kpis"):
        for metric in contributed:
            core_plugin = plugin_id.startswith("core.")
            if not core_plugin and not metric.name.startswith(f"{plugin_id}."):
                raise ValueError(f"plugin {plugin_id!r} registered KPI {metric.name!r}: a plugin's "
                                 f"KPIs are named '{plugin_id}.<name>'")
            if metric.name in metrics:
                raise ValueError(f"KPI {metric.name!r} registered twice")
            unknown = set(metric.groupings) - set(GROUPINGS)
            if unknown or metric.unit not in UNITS:
                raise ValueError(f"KPI {metric.name!r}: unknown grouping(s) {sorted(unknown)} "
                                 f"or unit {metric.unit!r}")
            metrics[metric.name] = Metric(**{**metric.__dict__, "plugin": plugin_id})
    plugins._kpi_metrics = metrics
    return metrics


def available_metrics(plugins, enabled: Iterable[str]) -> dict[str, Metric]:
    """The metrics a tenant with ``enabled`` plugins may ask for."""
    enabled = set(enabled)
    return {name: metric for name, metric in registered_metrics(plugins).items()
            if metric.plugin.startswith("core.") or metric.plugin in enabled}


def compute_kpis(query: KpiQuery, metrics: Mapping[str, Metric], names: Iterable[str]) -> dict:
    """Validate ``names`` and ``query.group_by`` against ``metrics`` (what the tenant may
    use) and compute them: ``{"metrics": [description...], "rows": [{"group": {...},
    "values": {...}}]}``, rows sorted by group key. Raises :class:`KpiError`."""
    names = list(dict.fromkeys(names))
    errors: dict[str, list[str]] = {}
    unknown = [name for name in names if name not in metrics]
    if not names:
        errors["metrics"] = [f"Name at least one metric; valid: {', '.join(sorted(metrics))}."]
    elif unknown:
        errors["metrics"] = [f"Unknown metric(s) {', '.join(unknown)}; valid: {', '.join(sorted(metrics))}."]
    bad_groupings = [name for name in query.group_by if name not in GROUPINGS]
    if bad_groupings:
        errors["group_by"] = [f"Unknown grouping(s) {', '.join(bad_groupings)}; valid: {', '.join(GROUPINGS)}."]
    elif len(set(query.group_by)) != len(query.group_by):
        errors["group_by"] = ["A grouping is named twice."]
    elif sum(name in PERIODS for name in query.group_by) > 1:
        errors["group_by"] = ["Name at most one of day, week and month."]
    if not errors:
        for name in names:
            missing = [g for g in query.group_by if g not in metrics[name].groupings]
            if missing:
                valid = ", ".join(sorted(metrics[name].groupings, key=GROUPINGS.index)) or "none"
                errors.setdefault("group_by", []).append(
                    f"Metric {name} cannot be grouped by {', '.join(missing)}; it can by: {valid}.")
    if errors:
        raise KpiError("The KPI request names something that does not exist.", errors)
    rows: dict[tuple, dict[str, Any]] = {}
    for name in names:
        for key, value in metrics[name].compute(query).items():
            rows.setdefault(tuple(key), {})[name] = value
    ordered = sorted(rows.items(), key=lambda pair: tuple("" if k is None else k for k in pair[0]))
    return {
        "metrics": [metrics[name].describe() for name in names],
        "rows": [{"group": dict(zip(query.group_by, key)),
                  "values": {name: values.get(name) for name in names}}
                 for key, values in ordered],
    }


__all__ = ["GROUPINGS", "UNITS", "KpiError", "KpiQuery", "Metric", "available_metrics",
           "compute_kpis", "registered_metrics", "key_text"]
