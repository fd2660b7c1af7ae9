"""Quality files, grown: disputes of the subject's evaluations, a manager's team, and
(from :mod:`core.kpis.quality_dimensions`) the SERVQUAL index and repeat offences.

:func:`grow` adds to a file :func:`core.kpis.quality_files.quality_file` built:

* **disputes**: each listed evaluation carries ``original_percent`` (the rules' percent
  before a decided dispute overrode items; ``null`` when none did), ``disputed`` (a dispute
  is open now) and its latest ``dispute`` (id, status, result, original and final percent);
  the summary counts ``disputes_filed``, ``disputes_open`` and ``disputes_overturned`` on
  the subject's records of the period (one query each for the rows and the counts);
* **team** (a member of staff others report to, ``staff.reports_to``): per direct report
  and for the team, evaluations, mean score, pass rate, critical failures, evaluations
  under an open dispute and complaints (one grouped query for the scores, one for the
  complaints, whatever the team's size); ``null`` for anyone else and for a site;
* **dimensions** and **repeat_offences** (see :mod:`core.kpis.quality_dimensions`);
* **repeat_complaints**: tenant-local calendar months with :data:`REPEAT_THRESHOLD` or more
  complaints about the subject (as the file counts them), one grouped query.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from sqlalchemy import and_, case, func, or_, select, union
from sqlalchemy.orm import aliased

from servq.core.kpis.quality_dimensions import REPEAT_THRESHOLD, _month_start, dimensions, repeat_offences
from servq.core.kpis.sql import period
from servq.core.kpis.quality_trends import _number, _percent
from servq.core.models import Dispute, Evaluation, Record, Staff

if TYPE_CHECKING:
    from servq.core.kpis.quality_files import FileQuery

#: Dispute states in which the evaluation is under dispute.
OPEN_DISPUTE = ("open", "appealed")
#: Results of a dispute that overturned (some of) the evaluation.
OVERTURNED = ("accepted", "partially_accepted")


def grow(q: FileQuery, out: dict[str, Any]) -> None:
    """Add the disputes, the team, the SERVQUAL dimensions and the repeat offences to
    the file ``out`` (in place)."""
    _dispute_details(q, out["evaluations"]["items"])
    out["summary"].update(_dispute_counts(q))
    out["team"] = _team(q)
    out["dimensions"] = dimensions(q)
    out["repeat_offences"] = repeat_offences(q)
    out["repeat_complaints"] = _repeat_complaints(q)


# -- disputes ---------------------------------------------------------------------------------


def _dispute_counts(q: FileQuery) -> dict[str, int]:
    """Disputes filed on the subject's records of the period, still open, and overturned
    (their last decision accepted them wholly or partly): one query."""
    row = q.session.execute(
        select(func.count(Dispute.id),
               func.count(case((Dispute.status.in_(OPEN_DISPUTE), 1))),
               func.count(case((Dispute.result.in_(OVERTURNED), 1))))
        .select_from(Dispute)
        .join(Record, and_(Record.tenant_id == Dispute.tenant_id, Record.id == Dispute.record_id))
        .where(*q.records())).one()
    return {"disputes_filed": int(row[0] or 0), "disputes_open": int(row[1] or 0),
            "disputes_overturned": int(row[2] or 0)}


def _dispute_details(q: FileQuery, items: list[dict[str, Any]]) -> None:
    """Give each listed evaluation its original percent, whether it is under dispute and
    its latest dispute (one query over the listed records, at most ``limit`` of them)."""
    for item in items:
        item.update(original_percent=None, disputed=False, dispute=None)
    if not items:
        return
    e = Evaluation
    ids = sorted({item["record_id"] for item in items}, key=str)
    rows = q.session.execute(
        select(e.record_id, e.standard_code, e.original_percent, e.disputed,
               Dispute.id.label("dispute_id"), Dispute.status, Dispute.result,
               Dispute.original_percent.label("dispute_original"),
               Dispute.final_percent.label("dispute_final"), Dispute.filed_at)
        .select_from(e)
        .outerjoin(Dispute, and_(Dispute.tenant_id == e.tenant_id, Dispute.record_id == e.record_id,
                                 Dispute.standard_code == e.standard_code))
        .where(e.record_id.in_(ids))
        .order_by(Dispute.filed_at.desc().nulls_last(), Dispute.id.desc())).all()
    found: dict[tuple, dict[str, Any]] = {}
    for row in rows:
        key = (row.record_id, row.standard_code)
        if key in found:  # ordered newest first: the first row is the latest dispute
            continue
        found[key] = {
            "original_percent": _number(row.original_percent), "disputed": bool(row.disputed),
            "dispute": None if row.dispute_id is None else {
                "id": row.dispute_id, "status": row.status, "result": row.result,
                "original_percent": _number(row.dispute_original),
                "final_percent": _number(row.dispute_final), "filed_at": row.filed_at}}
    for item in items:
        item.update(found.get((item["record_id"], item["standard_code"]), {}))


# -- a manager's team ---------------------------------------------------------------------------


def _team(q: FileQuery) -> dict[str, Any] | None:
    """The direct reports of a member of staff and their figures over the period, or
    ``None`` when nobody reports to the subject (two grouped queries)."""
    if q.subject != "staff":
        return None
    e = Evaluation
    report = aliased(Staff, name="report")
    theirs = and_(Record.tenant_id == report.tenant_id, Record.staff_id == report.id,
                  *q.live(Record), q.in_period(Record.occurred_at))
    rows = q.session.execute(
        select(report.id, report.code, report.name, report.site_id,
               func.count(e.id).label("evaluations"),
               func.sum(e.percent).label("percent_sum"), func.count(e.percent).label("scored"),
               func.count(case((e.passed.is_(True), 1))).label("passed"),
               func.count(e.passed).label("judged"),
               func.count(case((_has_critical(q, e), 1))).label("critical"),
               func.count(case((e.disputed.is_(True), 1))).label("disputed"))
        .select_from(report)
        .outerjoin(Record, theirs)
        .outerjoin(e, and_(e.tenant_id == Record.tenant_id, e.record_id == Record.id))
        .where(report.reports_to == q.subject_id)
        .group_by(report.id, report.code, report.name, report.site_id)
        .order_by(report.code)).all()
    if not rows:
        return None
    complaints = _team_complaints(q)
    members = []
    for row in rows:
        members.append({
            "staff_id": row.id, "code": row.code, "name": row.name, "site_id": row.site_id,
            "evaluations": int(row.evaluations),
            "score": float(row.percent_sum) / row.scored if row.scored else None,
            "pass_rate": _percent(row.passed, row.judged),
            "critical_failures": int(row.critical), "disputes_open": int(row.disputed),
            "complaints": complaints.get(row.id, 0)})
    scored = sum(row.scored for row in rows)
    summary = {
        "members": len(rows),
        "evaluations": sum(m["evaluations"] for m in members),
        "score": (sum(float(row.percent_sum or 0) for row in rows) / scored) if scored else None,
        "pass_rate": _percent(sum(row.passed for row in rows), sum(row.judged for row in rows)),
        "critical_failures": sum(m["critical_failures"] for m in members),
        "disputes_open": sum(m["disputes_open"] for m in members),
        "complaints": sum(m["complaints"] for m in members),
    }
    return {"summary": summary, "members": members}


def _has_critical(q: FileQuery, e):
    fn = func.jsonb_array_length if q.dialect == "postgresql" else func.json_array_length
    return fn(e.failed_critical) > 0


def _team_complaints(q: FileQuery) -> dict[Any, int]:
    """Complaints in the period about each direct report, as a file counts them: filed
    against them, or naming one of their records in ``data.record_id`` (one query: the
    distinct (complaint, report) pairs of both ways, counted per report)."""
    from servq.core.kpis.quality_files import COMPLAINT, _json_uuid_text, _uuid_text

    reports = select(Staff.id).where(Staff.reports_to == q.subject_id)
    c, target = aliased(Record, name="complaint"), aliased(Record, name="target")
    complaint = [c.kind == COMPLAINT, *q.live(c), q.in_period(c.occurred_at)]
    direct = select(c.id.label("complaint_id"), c.staff_id.label("staff_id")).where(
        *complaint, c.staff_id.in_(reports))
    targets = (select(_uuid_text(target.id).label("key"), target.staff_id.label("staff_id"))
               .where(target.staff_id.in_(reports), *q.live(target)).subquery("targets"))
    about = (select(c.id.label("complaint_id"), targets.c.staff_id)
             .select_from(c)
             .join(targets, targets.c.key == _json_uuid_text(q, c.data["record_id"].as_string()))
             .where(*complaint))
    pairs = union(direct, about).subquery("pairs")
    return dict(q.session.execute(
        select(pairs.c.staff_id, func.count()).group_by(pairs.c.staff_id)).all())


def _repeat_complaints(q: FileQuery) -> list[dict[str, Any]]:
    """The tenant-local months the period touches (each from its first day, up to
    ``until``) with at least :data:`REPEAT_THRESHOLD` complaints about the subject: filed
    against them or naming one of their records (one grouped query), oldest first."""
    from servq.core.kpis.quality_files import COMPLAINT, _json_uuid_text, _uuid_text

    c, target = aliased(Record, name="complaint"), aliased(Record, name="target")
    theirs = select(_uuid_text(target.id)).where(q.of_subject(target), *q.live(target))
    about = _json_uuid_text(q, c.data["record_id"].as_string())
    month = period(c.occurred_at, "month", q.timezone, q.dialect).label("month")
    rows = q.session.execute(
        select(month, func.count().label("complaints"))
        .where(c.kind == COMPLAINT, *q.live(c), c.occurred_at >= _month_start(q.since, q.timezone),
               c.occurred_at < q.until, or_(q.of_subject(c), about.in_(theirs)))
        .group_by(month).having(func.count() >= REPEAT_THRESHOLD).order_by(month)).all()
    return [{"month": row.month, "complaints": int(row.complaints), "threshold": REPEAT_THRESHOLD}
            for row in rows]


__all__ = ["grow", "OPEN_DISPUTE", "OVERTURNED"]
