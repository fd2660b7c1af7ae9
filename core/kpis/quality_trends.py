"""Quality files, over time and against peers: the trends and the ranks of a subject.

Part of the quality file (:mod:`core.kpis.quality_files`, whose :class:`FileQuery` says
what is asked): **trends** (:func:`_trends`): evaluations, mean score and pass rate per
tenant-local month, for the :data:`TREND_MONTHS` months ending with the month of
``until``; **rank** by mean score (:func:`_ranks`): a member of staff within their site and
within the tenant, a site within the tenant (SQL ``RANK()``: ties share a rank). One
query each.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

from sqlalchemy import and_, case, false, func, select

from servq.core.kpis.sql import period
from servq.core.models import Evaluation, Record, Staff

if TYPE_CHECKING:
    from servq.core.kpis.quality_files import FileQuery

TREND_MONTHS = 6
UTC_MIN = datetime.min.replace(tzinfo=timezone.utc)


def _percent(part, whole) -> float | None:
    return None if not whole else 100.0 * float(part or 0) / float(whole)


def _number(value) -> float | None:
    return None if value is None else float(value)


def trend_months(until: datetime, tz: str, count: int = TREND_MONTHS) -> tuple[list[str], datetime]:
    """The keys of the ``count`` tenant-local months ending with the month of the last
    instant before ``until`` (oldest first), and the UTC start of the first of them."""
    zone = ZoneInfo(tz)
    last = (until - timedelta(microseconds=1)).astimezone(zone)
    year, month = last.year, last.month
    months = []
    for _ in range(count):
        months.append((year, month))
        if year == 1 and month == 1:
            break
        year, month = (year - 1, 12) if month == 1 else (year, month - 1)
    months.reverse()
    first_year, first_month = months[0]
    try:
        start = datetime(first_year, first_month, 1, tzinfo=zone).astimezone(timezone.utc)
    except (OverflowError, ValueError):
        start = UTC_MIN
    return [f"{y:04d}-{m:02d}" for y, m in months], start


def _trends(q: FileQuery) -> list[dict[str, Any]]:
    """Evaluations, mean score and pass rate per month (one grouped query)."""
    months, start = trend_months(q.until, q.timezone)
    e = Evaluation
    key = period(Record.occurred_at, "month", q.timezone, q.dialect).label("month")
    rows = q.session.execute(
        select(key, func.count(e.id), func.avg(e.percent),
               func.sum(case((e.passed.is_(True), 1), else_=0)), func.count(e.passed))
        .select_from(Record)
        .join(e, and_(e.tenant_id == Record.tenant_id, e.record_id == Record.id))
        .where(q.of_subject(), *q.live(), Record.occurred_at >= start, Record.occurred_at < q.until)
        .group_by(key)).all()
    found = {row[0]: row for row in rows}
    out = []
    for month in months:
        row = found.get(month)
        out.append({"month": month, "evaluations": int(row[1]) if row else 0,
                    "score": _number(row[2]) if row else None,
                    "pass_rate": _percent(row[3], row[4]) if row else None})
    return out


def _scores(q: FileQuery, by) -> Any:
    """Mean evaluation percent per value of ``by`` (a Record column) in the period."""
    e = Evaluation
    return (select(by.label("subject_id"), func.avg(e.percent).label("score"))
            .select_from(Record)
            .join(e, and_(e.tenant_id == Record.tenant_id, e.record_id == Record.id))
            .where(*q.live(), q.in_period(Record.occurred_at), by.is_not(None),
                   e.percent.is_not(None))
            .group_by(by).subquery("scores"))


def _rank(rank, out_of, value) -> dict[str, Any]:
    return {"metric": "score", "rank": None if rank is None else int(rank),
            "out_of": int(out_of or 0), "value": _number(value)}


def _ranks(q: FileQuery) -> dict[str, Any]:
    """The subject's rank by mean score (one query: ``RANK()`` over every member of staff
    or site with a score, then the subject's row picked out by aggregation, so the number
    ranked is known even when the subject has no score)."""
    if q.subject == "site":
        scores = _scores(q, Record.site_id)
        ranked = select(scores.c.subject_id, scores.c.score,
                        func.rank().over(order_by=scores.c.score.desc()).label("tenant_rank"),
                        func.count().over().label("tenant_n")).subquery("ranked")
        mine = ranked.c.subject_id == q.subject_id
        row = q.session.execute(select(
            func.max(case((mine, ranked.c.tenant_rank))), func.max(ranked.c.tenant_n),
            func.max(case((mine, ranked.c.score))))).one()
        return {"within_site": None, "within_tenant": _rank(row[0], row[1], row[2])}
    scores = _scores(q, Record.staff_id)
    ranked = (select(Staff.id.label("subject_id"), Staff.site_id.label("site_id"), scores.c.score,
                     func.rank().over(order_by=scores.c.score.desc()).label("tenant_rank"),
                     func.count().over().label("tenant_n"),
                     func.rank().over(partition_by=Staff.site_id,
                                      order_by=scores.c.score.desc()).label("site_rank"),
                     func.count().over(partition_by=Staff.site_id).label("site_n"))
              .select_from(Staff).join(scores, scores.c.subject_id == Staff.id)
              .subquery("ranked"))
    mine = ranked.c.subject_id == q.subject_id
    same_site = ranked.c.site_id == q.site_id if q.site_id is not None else false()
    row = q.session.execute(select(
        func.max(case((mine, ranked.c.tenant_rank))), func.max(ranked.c.tenant_n),
        func.max(case((mine, ranked.c.score))),
        func.max(case((mine, ranked.c.site_rank))), func.max(case((same_site, ranked.c.site_n))))).one()
    within_site = None if q.site_id is None else _rank(row[3], row[4], row[2])
    return {"within_site": within_site, "within_tenant": _rank(row[0], row[1], row[2])}


__all__ = ["TREND_MONTHS", "trend_months"]
