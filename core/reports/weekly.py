"""The weekly quality-meeting report: the data, as one JSON-ready dict.

The meeting looks at one ISO week of the tenant's own time zone (Monday 00:00 to the next
Monday 00:00 local time, :func:`week_bounds`) and asks, in this order: how did the week's
numbers compare with the four weeks before (``kpis``), which standard items failed most
(``top_failures``, a Pareto with cumulative shares), which deadlines were breached
(``breaches``), which corrective actions are still open (``open_actions``), and which
sites and staff did best and worst (``sites``, ``staff``). :func:`build_weekly` answers
all of it with a constant number of queries, whatever the size of the tenant: the KPIs
come from :func:`core.kpis.compute_kpis` (the same metrics as ``GET /api/v1/kpis``), the
lists are single indexed queries capped at :data:`LIST_LIMIT` rows with their totals.

The renderers (:mod:`core.reports.render_csv`, ``render_xlsx``, ``render_pdf``) only lay
this dict out; they compute nothing, so every format shows the same numbers.

Determinism: the report is a function of the data and its *as-of* instant, the earlier
of the week's end and the moment it was asked for. A past week's report built now, or
later by a job, is the same report, byte for byte.
"""

from __future__ import annotations

import math
import re
import uuid
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, timezone
from typing import Any, Mapping
from zoneinfo import ZoneInfo

from sqlalchemy import and_, func, or_, select

from servq.core.calendar.tenant import tenant_calendar
from servq.core.db import utcnow
from servq.core.kpis import KpiQuery, Metric, available_metrics, compute_kpis
from servq.core.kpis.pareto import item_titles, pareto
from servq.core.models import Action, Clock, Record, Site, Staff, Tenant
from servq.core.plugins.app import enabled_plugin_ids, get_plugins
from servq.core.reports.pauses import pause_section
from servq.core.evaluation.actions import CLOSED

#: The KPIs of the report's trend table, in the order shown. A metric that is not
#: registered (a core module not loaded) is left out and named in ``skipped_metrics``.
REPORT_METRICS: tuple[str, ...] = (
    "records", "score", "pass_rate", "critical_failures", "deadline_attainment", "breaches",
    "complaints", "actions_open", "actions_overdue", "response_time", "resolution_time",
    "paused_time", "pause_cap_hits", "nps", "csat",
)
#: The metric the Pareto of failed items is built from (grouped by ``item``).
FAILED_ITEMS = "failed_items"
#: The parts shown of the metrics whose value is a dict, so the table has the same rows
#: whether or not a week has data: ``score`` is the headline and keeps the metric's name
#: (``nps``), every other part gets a row of its own (``response_time.median``). A
#: dict-valued metric not listed shows its ``score`` only.
COMPONENTS: dict[str, tuple[str, ...]] = {
    "response_time": ("mean", "median", "p90", "n"),
    "resolution_time": ("mean", "median", "p90", "n"),
    "nps": ("score", "n"),
    "csat": ("score", "n"),
}
#: Weeks shown before the report's week.
PREVIOUS_WEEKS = 4
#: Most rows listed per section (breaches, open actions); totals are always complete.
LIST_LIMIT = 200
#: Most items in the Pareto of failures; shares are of all failures of the week.
PARETO_LIMIT = 20
#: Decimals kept of every figure of the report.
DIGITS = 4
#: Sites and staff shown at each end of the ranking.
RANK_SIZE = 5
LANGUAGES = ("en", "zh")

#: Years a report may be asked for (the weeks before and after must be real dates too).
MIN_YEAR, MAX_YEAR = 1900, 9998
_WEEK_RE = re.compile(r"^(\d{4})-W(\d{2})$")


class WeekError(ValueError):
    """The week is not an ISO week written ``YYYY-Www`` (``2026-W47``)."""


@dataclass(frozen=True)
class Week:
    """One ISO week of a time zone: its key, local dates and UTC bounds ``[since, until)``."""

    key: str
    monday: date
    since: datetime
    until: datetime

    @property
    def sunday(self) -> date:
        return self.monday + timedelta(days=6)


def parse_week(text: str) -> tuple[int, int]:
    """``"2026-W47"`` → ``(2026, 47)``; :class:`WeekError` when not a real ISO week."""
    match = _WEEK_RE.match(text or "")
    if not match:
        raise WeekError(f"Not an ISO week: {text!r}; write it like 2026-W47.")
    year, number = int(match.group(1)), int(match.group(2))
    if not MIN_YEAR <= year <= MAX_YEAR:
        raise WeekError(f"The year must be between {MIN_YEAR} and {MAX_YEAR}.")
    try:
        date.fromisocalendar(year, number, 1)
    except ValueError:
        raise WeekError(f"{year} has no week {number}.") from None
    return year, number


def week_bounds(key: str, tz: str) -> Week:
    """The ISO week ``key`` in time zone ``tz``: local Monday midnight to the next one,
    as UTC instants (daylight saving makes some weeks an hour shorter or longer)."""
    year, number = parse_week(key)
    monday = date.fromisocalendar(year, number, 1)
    return _week_of(monday, ZoneInfo(tz))


def _week_of(monday: date, zone: ZoneInfo) -> Week:
    year, number, _ = monday.isocalendar()
    since = datetime.combine(monday, time(0), zone).astimezone(timezone.utc)
    until = datetime.combine(monday + timedelta(days=7), time(0), zone).astimezone(timezone.utc)
    return Week(f"{year}-W{number:02d}", monday, since, until)


def previous_week_key(now: datetime, tz: str) -> str:
    """The week before the one ``now`` falls in, in ``tz``: the week a Monday meeting reviews."""
    local = now.astimezone(ZoneInfo(tz)).date()
    monday = local - timedelta(days=local.weekday() + 7)
    year, number, _ = monday.isocalendar()
    return f"{year}-W{number:02d}"


def report_timezone(session) -> str:
    """The tenant's time zone: its business calendar's (the tenant's own by default)."""
    return tenant_calendar(session).timezone


def week_record_count(session, week: Week) -> int:
    """Live records that occurred in the week: decides whether the report runs as a job."""
    return session.scalar(select(func.count()).select_from(Record).where(
        Record.deleted_at.is_(None), Record.occurred_at >= week.since,
        Record.occurred_at < week.until)) or 0


# -- labels ---------------------------------------------------------------------------------

#: Every fixed text the renderers print, in both languages.
LABELS: dict[str, dict[str, str]] = {
    "en": {
        "report": "Weekly quality report", "week": "Week", "period": "Period",
        "timezone": "Time zone", "as_of": "As of", "kpis": "KPIs", "metric": "Metric",
        "unit": "Unit", "change": "Change vs previous week", "average": "Average of previous 4 weeks",
        "trend": "KPI trend (%)", "top_failures": "Top failures", "rank": "Rank",
        "item": "Item", "standard": "Standard", "title": "Title", "failures": "Failures",
        "share": "Share (%)", "cumulative_share": "Cumulative share (%)",
        "pareto": "Pareto of failed items", "breaches": "Deadline breaches",
        "record": "Record", "record_id": "Record id", "action_id": "Action id",
        "all_equal": "All ranked alike this week: listed as equals, none worst.", "equal": "Equal",
        "kind": "Kind", "site": "Site", "due_at": "Due", "stopped_at": "Stopped",
        "state": "State", "open_actions": "Open corrective actions", "action": "Action",
        "source": "Source", "status": "Status", "created_at": "Opened", "overdue": "Overdue",
        "age_days": "Age (days)", "sites": "Sites", "staff": "Staff", "best": "Best",
        "worst": "Worst", "name": "Name", "code": "Code", "score": "Mean score",
        "pass_rate": "Pass rate (%)", "records": "Records", "total": "Total", "shown": "Shown",
        "yes": "yes", "no": "no", "none": "None this week.", "skipped": "Not available",
        "section": "Section", "position": "Position", "field": "Field", "value": "Value",
        "summary": "Summary", "tenant": "Tenant", "language": "Language",
        "part_mean": "mean", "part_median": "median", "part_p90": "90th percentile",
        "part_n": "measured", "pauses": "Paused clocks",
        "reason": "Reason", "seconds": "Seconds", "cap_hits": "Cap hits",
        # Values of the report's enumerations, as the Excel and PDF files print them.
        "unit_count": "count", "unit_percent": "%", "unit_per_1000": "per 1,000", "unit_points": "points",
        "unit_score": "score", "unit_seconds": "duration", "status_open": "open",
        "status_in_progress": "in progress", "source_critical": "critical item", "source_item": "failed item",
        "source_deadline": "missed deadline", "source_manual": "manual",
    },
    "zh": {
        "report": "每周质量报告", "week": "周", "period": "期间", "timezone": "时区",
        "as_of": "截至", "kpis": "关键指标", "metric": "指标", "unit": "单位",
        "change": "较上周变化", "average": "前4周平均", "trend": "指标趋势（%）",
        "top_failures": "主要不合格项", "rank": "排名", "item": "条款", "standard": "标准",
        "title": "名称", "failures": "不合格次数", "share": "占比（%）",
        "cumulative_share": "累计占比（%）", "pareto": "不合格项帕累托图",
        "breaches": "超时记录", "record": "记录", "record_id": "记录编号", "action_id": "措施编号",
        "all_equal": "本周排名全部相同：并列，无最差。", "equal": "并列", "kind": "类型", "site": "地点",
        "due_at": "截止时间", "stopped_at": "完成时间", "state": "状态",
        "open_actions": "未关闭的纠正措施", "action": "措施", "source": "来源", "status": "状态",
        "created_at": "开立时间", "overdue": "逾期", "age_days": "天数", "sites": "地点",
        "staff": "员工", "best": "最佳", "worst": "最差", "name": "名称", "code": "编号",
        "score": "平均得分", "pass_rate": "合格率（%）", "records": "记录数", "total": "合计",
        "shown": "列出", "yes": "是", "no": "否", "none": "本周无。", "skipped": "不可用",
        "section": "部分", "position": "位置", "field": "字段", "value": "数值",
        "summary": "概要", "tenant": "租户", "language": "语言",
        "part_mean": "均值", "part_median": "中位数", "part_p90": "90分位", "part_n": "样本数",
        "pauses": "时钟暂停", "reason": "原因", "seconds": "秒数", "cap_hits": "超限次数",
        "unit_count": "次数", "unit_percent": "%", "unit_per_1000": "每千", "unit_points": "分",
        "unit_score": "得分", "unit_seconds": "时长", "status_open": "未处理", "status_in_progress": "处理中",
        "source_critical": "关键项", "source_item": "不合格项", "source_deadline": "超时",
        "source_manual": "手工",
    },
}


def labels(language: str) -> dict[str, str]:
    return LABELS.get(language, LABELS["en"])


def value_label(t: dict[str, str], kind: str, value: Any) -> Any:
    """An enumeration's value (``kind`` ``unit``, ``status``, ``source``, ``position``) as
    printed in the report's language; an unknown value as it is."""
    if not isinstance(value, str):
        return value
    if kind == "position":
        return t.get(value, value)
    return t.get(f"{kind}_{value}", value)


# -- the report -----------------------------------------------------------------------------


def build_weekly(session, week_key: str, language: str = "en", now: datetime | None = None) -> dict:
    """The weekly report of the session's tenant for ISO week ``week_key``.

    :param language: ``en`` or ``zh``: titles of metrics, items and sections.
    :param now: when it is asked for (default now); the report counts "as of" the earlier
        of this and the end of the week (open actions, overdue flags, running clocks).
    :raises WeekError: ``week_key`` is not an ISO week.
    """
    language = language if language in LANGUAGES else "en"
    tz = report_timezone(session)
    week = week_bounds(week_key, tz)
    as_of = min(now or utcnow(), week.until)
    zone = ZoneInfo(tz)
    weeks = [_week_of(week.monday - timedelta(days=7 * n), zone) for n in range(PREVIOUS_WEEKS, -1, -1)]
    metrics = available_metrics(get_plugins(), enabled_plugin_ids(session))
    tenant = session.execute(select(Tenant.slug, Tenant.name).where(Tenant.id == session.tenant_id)).one()

    kpis, skipped = _kpis(session, metrics, weeks, tz, as_of, language)
    return {
        "report": "weekly",
        "tenant": {"slug": tenant.slug, "name": tenant.name},
        "week": week.key,
        "language": language,
        "timezone": tz,
        "period": {"start_date": week.monday.isoformat(), "end_date": week.sunday.isoformat(),
                   "since": _iso(week.since), "until": _iso(week.until)},
        "as_of": _iso(as_of),
        "weeks": [w.key for w in weeks],
        "kpis": kpis,
        "skipped_metrics": skipped,
        "top_failures": _top_failures(session, metrics, week, tz, as_of, language),
        "breaches": _breaches(session, week, as_of, language),
        "open_actions": _open_actions(session, as_of),
        "pauses": pause_section(session, week.since, week.until, DIGITS),
        "sites": _ranking(session, metrics, week, tz, as_of, "site"),
        "staff": _ranking(session, metrics, week, tz, as_of, "staff"),
        "ledger": _ledger(session, week),
    }


def _ledger(session, week: Week) -> dict:
    """The rewards and penalties of the month the week starts in (docs/ledger.md): totals
    and the people with the largest net penalties; JSON only (not rendered in CSV, Excel, PDF)."""
    from servq.core.ledger import summary

    month = week.monday.strftime("%Y-%m")
    data = summary(session, month)
    people = sorted(data["by_staff"], key=lambda line: line["net_points"])[:10]
    return {"month": month, "reward_points": sum(line["reward_points"] for line in data["by_staff"]),
            "penalty_points": sum(line["penalty_points"] for line in data["by_staff"]),
            "entries": sum(line["entries"] for line in data["by_staff"]), "flags": data["flags"],
            "staff": [{**line, "staff_id": str(line["staff_id"])} for line in people]}


def _query(session, since, until, tz, as_of, group_by: tuple[str, ...]) -> KpiQuery:
    return KpiQuery(session=session, since=since, until=until, timezone=tz, group_by=group_by,
                    now=as_of)


def _kpis(session, metrics: Mapping[str, Metric], weeks: list[Week], tz: str, as_of: datetime,
          language: str) -> tuple[list[dict], list[str]]:
    """One row per metric (per part of a dict-valued one, :data:`COMPONENTS`): the value
    of each week, the change against the week before and the mean of the previous weeks
    that have a value."""
    names = [name for name in REPORT_METRICS if name in metrics and "week" in metrics[name].groupings]
    skipped = [name for name in REPORT_METRICS if name not in names]
    if not names:
        return [], skipped
    result = compute_kpis(_query(session, weeks[0].since, weeks[-1].until, tz, as_of, ("week",)),
                          metrics, names)
    by_week = {row["group"]["week"]: row["values"] for row in result["rows"]}
    keys = [w.key for w in weeks]
    rows: list[dict] = []
    for name in names:
        metric = metrics[name]
        series = {key: by_week.get(key, {}).get(name) for key in keys}
        dicts = any(isinstance(v, Mapping) for v in series.values())
        components = COMPONENTS.get(name) or (("score",) if dicts else ())
        title = metric.title.get(language) or metric.title.get("en") or name
        if components:
            for component in components:
                values = {k: _number(v.get(component)) if isinstance(v, Mapping) else None
                          for k, v in series.items()}
                headline = component == "score"
                part = labels(language).get(f"part_{component}", component)
                rows.append(_kpi_row(name if headline else f"{name}.{component}",
                                     title if headline else f"{title} ({part})",
                                     "count" if component == "n" else metric.unit,
                                     None if component == "n" else metric.better, values, keys))
        else:
            rows.append(_kpi_row(name, title, metric.unit, metric.better,
                                 {k: _number(v) if not isinstance(v, Mapping) else None
                                  for k, v in series.items()}, keys))
    return rows, skipped


def _kpi_row(name: str, title: str, unit: str, better: str | None, values: dict, keys: list[str]) -> dict:
    if unit == "count":
        # A week with no row counted nothing: 0, not "no value" (a percent stays None).
        values = {key: 0 if value is None else value for key, value in values.items()}
    current, previous = values[keys[-1]], values[keys[-2]]
    earlier = [values[k] for k in keys[:-1] if values[k] is not None]
    return {
        "metric": name, "title": title, "unit": unit, "better": better, "values": values,
        "current": current, "previous": previous,
        "change": None if current is None or previous is None else _round(current - previous),
        "average_previous": _round(sum(earlier) / len(earlier)) if earlier else None,
    }


def _top_failures(session, metrics, week: Week, tz: str, as_of: datetime, language: str) -> dict:
    """Pareto of the week's failed items: most failures first, each with its share and
    the cumulative share of all the week's failures."""
    metric = metrics.get(FAILED_ITEMS)
    if metric is None or "item" not in metric.groupings:
        return {"available": False, "total": 0, "items": []}
    result = compute_kpis(_query(session, week.since, week.until, tz, as_of, ("item",)),
                          metrics, [FAILED_ITEMS])
    total, entries = pareto((row["group"]["item"], int(row["values"][FAILED_ITEMS] or 0))
                            for row in result["rows"] if row["group"]["item"] is not None)
    entries = entries[:PARETO_LIMIT]
    titles = item_titles(session, [entry["key"] for entry in entries], language)
    items = []
    for rank, entry in enumerate(entries, start=1):
        standard, _, code = entry["key"].partition("/")
        items.append({"rank": rank, "item": entry["key"], "standard": standard, "code": code,
                      "title": titles.get(entry["key"]) or code, "failures": entry["count"],
                      "share": _round(entry["share"]), "cumulative_share": _round(entry["cumulative_share"])})
    return {"available": True, "total": total, "items": items}


def _breaches(session, week: Week, as_of: datetime, language: str) -> dict:
    """The deadline clocks of the week's records that were missed: marked breached, or
    still running past due at the as-of instant. The same clocks the ``breaches`` KPI
    counts for the week, so the list's total is the KPI's value."""
    where = [Record.occurred_at >= week.since, Record.occurred_at < week.until,
             or_(Clock.state == "breached", and_(Clock.state == "running", Clock.due_at <= as_of)),
             Record.deleted_at.is_(None)]
    joined = select(Clock).join(Record, and_(Record.tenant_id == Clock.tenant_id,
                                             Record.id == Clock.record_id))
    total = session.scalar(joined.with_only_columns(func.count()).where(*where)) or 0
    rows = session.execute(
        select(Clock.record_id, Clock.standard_code, Clock.item_code, Clock.due_at, Clock.stop_at,
               Record.kind, Record.site_id, Site.name.label("site"))
        .select_from(Clock)
        .join(Record, and_(Record.tenant_id == Clock.tenant_id, Record.id == Clock.record_id))
        .outerjoin(Site, and_(Site.tenant_id == Record.tenant_id, Site.id == Record.site_id))
        .where(*where).order_by(Clock.due_at, Clock.record_id, Clock.item_code)
        .limit(LIST_LIMIT)).all()
    titles = item_titles(session, {f"{r.standard_code}/{r.item_code}" for r in rows}, language)
    kinds = get_plugins().kinds
    items = [{"record_id": str(r.record_id), "reference": short_reference(r.record_id),
              "kind": r.kind, "kind_title": kind_title(kinds.get(r.kind), r.kind, language), "site": r.site,
              "standard": r.standard_code, "item": r.item_code,
              "title": titles.get(f"{r.standard_code}/{r.item_code}") or r.item_code,
              "due_at": _iso(r.due_at), "stopped_at": _iso(r.stop_at)} for r in rows]
    return {"total": total, "shown": len(items), "items": items}


def _open_actions(session, as_of: datetime) -> dict:
    """Corrective actions open at the as-of instant, oldest first: opened before it and
    not done by then. An action done later, or reopened later, counts as open."""
    open_then = and_(Action.created_at < as_of,
                     or_(and_(Action.status.not_in(CLOSED), Action.done_at.is_(None)),
                         Action.done_at >= as_of))
    overdue = and_(Action.due_at.is_not(None), Action.due_at < as_of)
    totals = session.execute(select(func.count(), func.count(Action.id).filter(overdue))
                             .select_from(Action).where(open_then)).one()
    rows = session.execute(select(Action).where(open_then)
                           .order_by(Action.created_at, Action.id).limit(LIST_LIMIT)).scalars().all()
    items = [{"id": str(a.id), "reference": short_reference(a.id), "title": a.title, "source": a.source, "status": a.status,
              "record_id": str(a.record_id) if a.record_id else None,
              "item": f"{a.standard_code}/{a.item_code}" if a.item_code else None,
              "created_at": _iso(a.created_at), "due_at": _iso(a.due_at),
              "overdue": a.due_at is not None and _aware(a.due_at) < as_of,
              "age_days": (as_of - _aware(a.created_at)).days} for a in rows]
    return {"total": totals[0], "overdue": totals[1], "shown": len(items), "items": items}


def _ranking(session, metrics, week: Week, tz: str, as_of: datetime, grouping: str) -> dict:
    """Best and worst by mean score of the week (then pass rate, then records): the best
    ``RANK_SIZE`` and the worst ``RANK_SIZE``, never the same one in both lists (with
    fewer than ten ranked, the upper half are the best and the lower half the worst).
    Only those with a score are ranked; records without a site/staff are left out."""
    names = [n for n in ("records", "score", "pass_rate") if n in metrics and grouping in metrics[n].groupings]
    if "score" not in names:
        return {"available": False, "ranked": 0, "all_equal": False, "best": [], "worst": []}
    result = compute_kpis(_query(session, week.since, week.until, tz, as_of, (grouping,)), metrics, names)
    scored = [(row["group"][grouping], row["values"]) for row in result["rows"]
              if row["group"][grouping] is not None and _number(row["values"].get("score")) is not None]
    model = Site if grouping == "site" else Staff
    ids = [_uuid(key) for key, _ in scored]
    found = {str(r.id): r for r in session.execute(
        select(model.id, model.code, model.name).where(model.id.in_([i for i in ids if i])))} if ids else {}
    entries = []
    for key, values in scored:
        row = found.get(key)
        entries.append({"id": key, "code": row.code if row else None, "name": row.name if row else key,
                        "score": _number(values.get("score")), "pass_rate": _number(values.get("pass_rate")),
                        "records": int(values.get("records") or 0)})
    entries.sort(key=lambda e: (-e["score"], -(e["pass_rate"] if e["pass_rate"] is not None else -1),
                                -e["records"], e["name"] or "", e["id"]))
    if len({(e["score"], e["pass_rate"]) for e in entries}) == 1:
        # All equal: nobody is worst; they are listed once, as equals.
        return {"available": True, "ranked": len(entries), "all_equal": len(entries) > 1,
                "best": entries[:RANK_SIZE], "worst": []}
    best_n = min(RANK_SIZE, math.ceil(len(entries) / 2))
    worst_n = min(RANK_SIZE, len(entries) - best_n)
    worst = list(reversed(entries[len(entries) - worst_n:])) if worst_n else []
    return {"available": True, "ranked": len(entries), "all_equal": False, "best": entries[:best_n],
            "worst": worst}


# -- helpers --------------------------------------------------------------------------------


#: Hex digits of an id shown as its short reference (``3f2a9c1b``): what a reader quotes;
#: the full id stays in the report for machines.
REFERENCE_DIGITS = 8


def short_reference(identifier) -> str:
    return str(identifier).replace("-", "")[:REFERENCE_DIGITS]


def kind_title(kind, name: str, language: str) -> str:
    """A record kind's title in ``language`` (its name when no plugin registers it)."""
    title = getattr(kind, "title", None) or {}
    return title.get(language) or title.get("en") or name


def _number(value: Any) -> float | int | None:
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return None if math.isnan(number) else _round(number)


def _round(value: float) -> float:
    """Report figures keep :data:`DIGITS` decimals: enough for any KPI, and a number every
    format (a spreadsheet cell keeps 15 significant digits) holds exactly."""
    return round(value, DIGITS)


def _aware(instant: datetime) -> datetime:
    return instant if instant.tzinfo else instant.replace(tzinfo=timezone.utc)


def _iso(instant: datetime | None) -> str | None:
    return None if instant is None else _aware(instant).astimezone(timezone.utc).isoformat()


def _uuid(text: str) -> uuid.UUID | None:
    try:
        return uuid.UUID(text)
    except (TypeError, ValueError):
        return None
