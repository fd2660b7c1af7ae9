"""Knowledge-base KPIs, in SQL.

Of the records that occurred in ``[since, until)`` and are **resolved** (live, in a final
state of their kind's workflow: the kind's ``Workflow.final``), per kind:

- **link rate**: the share linked to at least one article;
- **first-time fix**, with and without an article: a resolved record is *fixed first time*
  when its workflow never reopened it, i.e. its ``timestamps`` hold no ``reopened_at``
  stamp (the ``reopen`` action of a workflow stamps it and no action clears it). Kinds
  whose workflow has no reopen action count every resolved record as fixed first time.

Of the articles: how many were created in the window, how many of those from a record
("created from this ticket", ``source_record_id``) and how many of those from a record
that had no link to any article before (knowledge that was missing); how many published
articles are **stale** now (their review overdue, :func:`servq.core.kb.reviews.overdue`).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime

from sqlalchemy import and_, case, exists, func, or_, select

from servq.core.kb.reviews import overdue
from servq.core.models import KbArticle, KbLink, Record


def _rate(part: int, whole: int) -> float | None:
    return round(100.0 * part / whole, 1) if whole else None


def _fix(records: int, fixed: int) -> dict:
    return {"records": records, "fixed_first_time": fixed, "rate": _rate(fixed, records)}


def stats(session, finals: Mapping[str, tuple[str, ...]], since: datetime, until: datetime,
          now: datetime) -> dict:
    """The KPIs above. ``finals``: each enabled kind's final states."""
    resolved = or_(*(and_(Record.kind == kind, Record.status.in_(states))
                     for kind, states in sorted(finals.items()) if states))
    linked = exists().where(KbLink.record_id == Record.id)
    first_time = Record.timestamps["reopened_at"].as_string().is_(None)
    kinds = []
    if finals and any(finals.values()):
        rows = session.execute(
            select(Record.kind, func.count(),
                   func.sum(case((linked, 1), else_=0)),
                   func.sum(case((first_time, 1), else_=0)),
                   func.sum(case((and_(linked, first_time), 1), else_=0)))
            .where(resolved, Record.deleted_at.is_(None), Record.occurred_at >= since,
                   Record.occurred_at < until)
            .group_by(Record.kind).order_by(Record.kind)).all()
        for kind, total, with_link, fixed, fixed_linked in rows:
            with_link, fixed, fixed_linked = int(with_link or 0), int(fixed or 0), int(fixed_linked or 0)
            kinds.append({"kind": kind, "resolved": total, "linked": with_link,
                          "link_rate": _rate(with_link, total),
                          "first_time_fix": {"with_article": _fix(with_link, fixed_linked),
                                             "without_article": _fix(total - with_link, fixed - fixed_linked)}})
    total = sum(k["resolved"] for k in kinds)
    linked_total = sum(k["linked"] for k in kinds)

    def _sum(side: str, field: str) -> int:
        return sum(k["first_time_fix"][side][field] for k in kinds)

    source = KbArticle.source_record_id
    prior = exists().where(KbLink.record_id == source, KbLink.created_at < KbArticle.created_at)
    created, from_records, unlinked = session.execute(
        select(func.count(), func.sum(case((source.is_not(None), 1), else_=0)),
               func.sum(case((and_(source.is_not(None), ~prior), 1), else_=0)))
        .where(KbArticle.created_at >= since, KbArticle.created_at < until)).one()
    published, stale = session.execute(
        select(func.sum(case((KbArticle.status == "published", 1), else_=0)),
               func.sum(case((overdue(now), 1), else_=0)))).one()
    return {
        "since": since, "until": until,
        "resolved": total, "linked": linked_total, "link_rate": _rate(linked_total, total),
        "first_time_fix": {side: _fix(_sum(side, "records"), _sum(side, "fixed_first_time"))
                           for side in ("with_article", "without_article")},
        "kinds": kinds,
        "articles": {"created": created, "from_records": int(from_records or 0),
                     "from_records_with_no_link_before": int(unlinked or 0),
                     "published": int(published or 0), "stale": int(stale or 0)},
    }
