"""Quality files: the history of one member of staff or one site, computed in SQL.

The source documents ask for a quality file for every employee and every manager: their
checks, findings, complaints and praise, the basis of rewards and penalties, compared in
regular rankings. :func:`quality_file` builds one for a *subject* (a member of staff:
the records whose ``staff_id`` is theirs; a site: the records whose ``site_id`` is it)
over a half-open period ``[since, until)``:

* **summary**: records, evaluations, mean score (mean evaluation ``percent``), pass rate
  (% of judged evaluations passed), critical failures (evaluations with a failed critical
  item), failed items, deadline attainment (% of the decided clocks, ``met``,
  ``breached`` or running past their due time, that were met: the KPIs' definitions),
  complaints, praise, open and overdue actions;
* **evaluations** and **findings** (failed or breached items), newest first;
* **complaints** about the subject: ``complaint`` records of the subject, and complaints
  whose ``data.record_id`` names one of the subject's records;
* **praise**: survey responses about one of the subject's records that rate it at the
  top (a CSAT item answered 5, an NPS item answered 9 or 10: a promoter), and the
  subject's ``observation`` records tagged ``praise``;
* **actions**: corrective actions on the subject's records, and for a member of staff
  linked to a user, the actions that user owns;
* **trends**: evaluations, mean score and pass rate per tenant-local month, for the six
  months ending with the month of ``until``;
* **rank** by mean score: a member of staff within their site and within the tenant, a
  site within the tenant (SQL ``RANK()``: ties share a rank).

The trends and ranks are in :mod:`core.kpis.quality_trends`.

Records count by ``occurred_at``, survey responses by ``submitted_at``, actions by
``created_at`` (as the KPIs do). Soft-deleted records, records of kinds the tenant may not
use and records the caller's role may not see (mystery inspections for agents) count
nowhere. Every part is one query (lists are limited to ``limit`` rows, their totals come
from ``COUNT(*) OVER ()``), so a file costs the same number of queries whatever its size.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any, Iterable

from sqlalchemy import (String, and_, case, cast, exists, false, func, literal, not_,
                        or_, select, true, type_coerce)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import aliased
from sqlalchemy.sql import ColumnElement
from sqlalchemy.sql import column as column_named

from servq.core.db import JSONType
from servq.core.evaluation.visibility import hidden_from
from servq.core.kpis.quality_trends import (  # noqa: F401 (UTC_MIN: core.api.quality_files imports it from here)
    UTC_MIN, _number, _percent, _ranks, _trends, trend_months)
from servq.core.models import (Action, Clock, Evaluation, Record, StandardVersion, Survey,
                               SurveyAnswer, SurveyResponse)

SUBJECTS = ("staff", "site")
#: The record kinds a file reads by name (core's own kinds).
COMPLAINT = "complaint"
OBSERVATION = "observation"
#: The tag that makes an observation praise.
PRAISE_TAG = "praise"
#: The lowest answer of a metric item that counts as praise: CSAT's top box, NPS promoters.
PRAISE_MIN = {"csat": 5, "nps": 9}
#: Item outcomes that are findings.
FAILED = ("fail", "breached")
#: Corrective action states that are closed (core.evaluation.actions.CLOSED).
CLOSED = ("done", "verified", "raised_in_error")


@dataclass(frozen=True)
class FileQuery:
    """What one quality file is asked for.

    :param session: a tenant-scoped session.
    :param subject: ``"staff"`` or ``"site"``; ``subject_id`` its id (known to exist).
    :param since, until: the half-open period, UTC-aware.
    :param timezone: the tenant's time zone (months of the trends are tenant-local).
    :param limit: rows per list (evaluations, findings, complaints, praise, actions).
    :param kinds: the record kinds the tenant may use (``None``: every kind).
    :param role: the caller's role: records it may not see count nowhere.
    :param user_id: a member of staff's linked user (the actions they own).
    :param site_id: a member of staff's own site (their rank within it).
    :param now: the instant actions are judged overdue and running clocks late at.
    """

    session: Any
    subject: str
    subject_id: uuid.UUID
    since: datetime
    until: datetime
    timezone: str = "UTC"
    limit: int = 20
    kinds: tuple[str, ...] | None = None
    role: str | None = None
    user_id: uuid.UUID | None = None
    site_id: uuid.UUID | None = None
    now: datetime = field(default_factory=lambda: datetime.now(timezone.utc))

    @property
    def dialect(self) -> str:
        return self.session.get_bind().dialect.name

    # -- the clauses every part shares ----------------------------------------------------

    def of_subject(self, record=Record) -> ColumnElement:
        """``record`` belongs to the subject."""
        column = record.staff_id if self.subject == "staff" else record.site_id
        return column == self.subject_id

    def live(self, record=Record) -> list[ColumnElement]:
        """Not deleted, of a kind the tenant may use, visible to the caller's role."""
        clauses = [record.deleted_at.is_(None)]
        if self.kinds is not None:
            clauses.append(record.kind.in_(sorted(self.kinds)))
        hidden = hidden_from(self.role, record)
        if hidden is not None:
            clauses.append(hidden)
        return clauses

    def in_period(self, column) -> ColumnElement:
        return (column >= self.since) & (column < self.until)

    def records(self, record=Record) -> list[ColumnElement]:
        """The subject's live records that occurred in the period."""
        return [self.of_subject(record), *self.live(record), self.in_period(record.occurred_at)]


def quality_file(q: FileQuery) -> dict[str, Any]:
    """The quality file of ``q.subject`` (see the module docstring); a dict of plain
    values, timestamps UTC-aware."""
    if q.subject not in SUBJECTS:
        raise ValueError(f"unknown subject {q.subject!r}")
    summary = _summary(q)
    evaluations = _evaluations(q)
    findings = _findings(q)
    titles = _titles(q, [(e["standard_code"], e["standard_version"]) for e in evaluations["items"]]
                     + [(f["standard_code"], f["standard_version"]) for f in findings["items"]])
    for entry in evaluations["items"] + findings["items"]:
        title, items = titles.get((entry["standard_code"], entry["standard_version"]), (None, {}))
        entry["standard_title"] = title
        if "item_code" in entry:
            entry["item_title"] = items.get(entry["item_code"])
    complaints = _complaints(q)
    praise = _praise(q)
    actions = _actions(q)
    summary.update(findings=findings["total"], complaints=complaints["total"],
                   praise=praise["total"], actions_open=actions["open"],
                   actions_overdue=actions["overdue"])
    out = {
        "summary": summary,
        "evaluations": evaluations,
        "findings": findings,
        "complaints": complaints,
        "praise": praise,
        "actions": actions,
        "trends": _trends(q),
        "rank": _ranks(q),
        **({"ledger": _ledger(q)} if q.subject == "staff" else {}),
    }
    # Disputes, a manager's team, SERVQUAL dimensions, repeat offences (imported here:
    # that module reads this one's JSON helpers).
    from servq.core.kpis.quality_people import grow
    grow(q, out)
    return out


def _ledger(q: FileQuery) -> dict[str, Any]:
    """A person's rewards and penalties over the months the period touches (tenant-local;
    voided entries left out) and their open repeat-fault flags (:mod:`servq.core.ledger`)."""
    from zoneinfo import ZoneInfo

    from servq.core.ledger import person_totals

    zone = ZoneInfo(q.timezone or "UTC")
    last = max(q.since, q.until - timedelta(microseconds=1))
    first = q.since.astimezone(zone).strftime("%Y-%m") if q.since.year > 1 else "0000-00"
    return person_totals(q.session, q.subject_id, (first, last.astimezone(zone).strftime("%Y-%m")))


# -- dialect helpers ------------------------------------------------------------------------


def _json_length(q: FileQuery, column) -> ColumnElement:
    """Length of a JSON array column."""
    fn = func.jsonb_array_length if q.dialect == "postgresql" else func.json_array_length
    return fn(column)


def _json_elements(q: FileQuery, column, name: str):
    """The elements of a JSON array ``column`` as a table with one JSON column ``value``
    (joined to the row it comes from: implicitly lateral on both databases)."""
    fn = func.jsonb_array_elements if q.dialect == "postgresql" else func.json_each
    return fn(column).table_valued(column_named("value", JSONType), name=name)


def _has_tag(q: FileQuery, record, tag: str) -> ColumnElement:
    """``record.data["tags"]`` (a list of texts) holds ``tag``."""
    if q.dialect == "postgresql":
        return type_coerce(record.data, JSONB)["tags"].contains([tag])
    tags = func.json_each(record.data, "$.tags").table_valued("value", name="tag")
    return exists(select(literal(1)).select_from(tags).where(tags.c.value == tag))


def _uuid_text(column) -> ColumnElement:
    """A UUID column as text: PostgreSQL writes it with hyphens, SQLite stores (and
    casts) it as 32 hex digits."""
    return cast(column, String)


def _json_uuid_text(q: FileQuery, expression) -> ColumnElement:
    """A UUID held as text in JSON (``"8454…-…"``, as ``str(uuid)`` writes it), in the
    form :func:`_uuid_text` gives on the same database."""
    if q.dialect == "postgresql":
        return func.lower(expression)
    return func.lower(func.replace(expression, "-", ""))



# -- the parts ------------------------------------------------------------------------------


def _summary(q: FileQuery) -> dict[str, Any]:
    """Records, evaluations, mean score, pass rate, critical failures (one query), and
    deadline attainment over the decided clocks of those records (one query)."""
    e = Evaluation
    row = q.session.execute(
        select(func.count(Record.id.distinct()), func.count(e.id), func.avg(e.percent),
               func.sum(case((e.passed.is_(True), 1), else_=0)), func.count(e.passed),
               func.sum(case((_json_length(q, e.failed_critical) > 0, 1), else_=0)))
        .select_from(Record)
        .outerjoin(e, and_(e.tenant_id == Record.tenant_id, e.record_id == Record.id))
        .where(*q.records())).one()
    records, evaluations, score, passed, judged, critical = row
    decided = or_(Clock.state.in_(("met", "breached")),
                  and_(Clock.state == "running", Clock.due_at <= q.now))
    clocks = q.session.execute(
        select(func.sum(case((Clock.state == "met", 1), else_=0)), func.count(Clock.id))
        .select_from(Clock)
        .join(Record, and_(Record.tenant_id == Clock.tenant_id, Record.id == Clock.record_id))
        .where(*q.records(), decided)).one()
    return {
        "records": int(records or 0),
        "evaluations": int(evaluations or 0),
        "score": _number(score),
        "pass_rate": _percent(passed, judged),
        "critical_failures": int(critical or 0),
        "deadline_attainment": _percent(clocks[0], clocks[1]),
        "clocks_decided": int(clocks[1] or 0),
    }


def _evaluations(q: FileQuery) -> dict[str, Any]:
    """The subject's evaluations, newest record first."""
    e = Evaluation
    rows = q.session.execute(
        select(e.record_id, Record.kind, Record.occurred_at, e.standard_code, e.standard_version,
               e.percent, e.grade, e.passed, e.complete, e.failed_critical, e.evaluated_at,
               func.count().over().label("total"))
        .select_from(Record)
        .join(e, and_(e.tenant_id == Record.tenant_id, e.record_id == Record.id))
        .where(*q.records())
        .order_by(Record.occurred_at.desc(), Record.id.desc(), e.standard_code)
        .limit(q.limit)).all()
    return {
        "total": rows[0].total if rows else 0,
        "items": [{"record_id": r.record_id, "record_kind": r.kind, "occurred_at": r.occurred_at,
                   "standard_code": r.standard_code, "standard_version": r.standard_version,
                   "percent": r.percent, "grade": r.grade, "passed": r.passed,
                   "complete": r.complete, "failed_critical": list(r.failed_critical or []),
                   "evaluated_at": r.evaluated_at} for r in rows],
    }


def _findings(q: FileQuery) -> dict[str, Any]:
    """Every failed or breached item of the subject's evaluations, newest record first
    (the per-item outcomes are expanded from the evaluation's JSON in SQL)."""
    e = Evaluation
    item = _json_elements(q, e.items, "item")
    code = item.c.value["code"].as_string()
    outcome = item.c.value["outcome"].as_string()
    rows = q.session.execute(
        select(e.record_id, Record.kind, Record.occurred_at, e.standard_code, e.standard_version,
               code.label("item_code"), outcome.label("outcome"), e.failed_critical,
               func.count().over().label("total"))
        .select_from(Record)
        .join(e, and_(e.tenant_id == Record.tenant_id, e.record_id == Record.id))
        .join(item, true())
        .where(*q.records(), outcome.in_(FAILED))
        .order_by(Record.occurred_at.desc(), Record.id.desc(), e.standard_code, code)
        .limit(q.limit)).all()
    return {
        "total": rows[0].total if rows else 0,
        "items": [{"record_id": r.record_id, "record_kind": r.kind, "occurred_at": r.occurred_at,
                   "standard_code": r.standard_code, "standard_version": r.standard_version,
                   "item_code": r.item_code, "outcome": r.outcome,
                   "critical": r.item_code in (r.failed_critical or [])} for r in rows],
    }


def _titles(q: FileQuery, versions: Iterable[tuple[str, int]]) -> dict[tuple[str, int], tuple]:
    """``{(code, version): (title of the standard, {item code: title of the item})}``
    for the versions the lists name (one query, none when they name none)."""
    wanted = sorted(set(versions))
    if not wanted:
        return {}
    sv = StandardVersion
    rows = q.session.execute(select(sv.code, sv.version, sv.document).where(
        or_(*[and_(sv.code == code, sv.version == version) for code, version in wanted])))
    out: dict[tuple[str, int], tuple] = {}
    for code, version, document in rows:
        document = document or {}
        items = {entry["code"]: entry.get("title") for entry in document.get("items") or []
                 if isinstance(entry, dict) and entry.get("code")}
        out[(code, version)] = (document.get("title"), items)
    return out


def _complaints(q: FileQuery) -> dict[str, Any]:
    """Complaints in the period that are the subject's records or name one of them in
    ``data.record_id``, newest first. ``data`` is returned as stored: the caller masks
    personal data."""
    c, target = aliased(Record, name="complaint"), aliased(Record, name="target")
    theirs = select(_uuid_text(target.id)).where(q.of_subject(target), *q.live(target))
    about = _json_uuid_text(q, c.data["record_id"].as_string())
    direct = q.of_subject(c)
    rows = q.session.execute(
        select(c.id, c.kind, c.site_id, c.staff_id, c.occurred_at, c.status, c.data,
               direct.label("direct"), func.count().over().label("total"))
        .where(c.kind == COMPLAINT, *q.live(c), q.in_period(c.occurred_at),
               or_(direct, about.in_(theirs)))
        .order_by(c.occurred_at.desc(), c.id.desc())
        .limit(q.limit)).all()
    return {"total": rows[0].total if rows else 0, "items": rows}


def _praise(q: FileQuery) -> dict[str, Any]:
    """Top ratings in survey responses about the subject's records, and the subject's
    observations tagged ``praise`` (newest first, ``limit`` of both together)."""
    items: list[dict[str, Any]] = []
    total = 0
    if q.kinds is None or OBSERVATION in q.kinds:
        rows = q.session.execute(
            select(Record.id, Record.occurred_at, Record.data["title"].as_string().label("title"),
                   func.count().over().label("total"))
            .where(*q.records(), Record.kind == OBSERVATION, _has_tag(q, Record, PRAISE_TAG))
            .order_by(Record.occurred_at.desc(), Record.id.desc())
            .limit(q.limit)).all()
        total += rows[0].total if rows else 0
        items += [{"source": "observation", "at": r.occurred_at, "record_id": r.id,
                   "title": r.title, "survey_id": None, "response_id": None, "metric": None,
                   "answer": None} for r in rows]
    found, more = _survey_praise(q)
    total += more
    items += found
    items.sort(key=lambda entry: entry["at"], reverse=True)
    return {"total": total, "items": items[:q.limit]}


def _responses_about_subject(q: FileQuery, response=SurveyResponse):
    """The responses in the period about one of the subject's live records (a join)."""
    return and_(Record.tenant_id == response.tenant_id, Record.id == response.record_id,
                q.of_subject(Record), *q.live(Record))


def _survey_praise(q: FileQuery) -> tuple[list[dict[str, Any]], int]:
    """Which survey items are CSAT or NPS is in each survey's instrument: one query reads
    the instruments of the surveys answered about the subject, one the top answers."""
    r = SurveyResponse
    answered = (select(r.survey_id).join(Record, _responses_about_subject(q, r))
                .where(q.in_period(r.submitted_at)))
    metric_items: list[tuple[uuid.UUID, int, str]] = []
    for survey_id, instrument in q.session.execute(
            select(Survey.id, Survey.instrument).where(Survey.id.in_(answered))):
        for position, entry in enumerate((instrument or {}).get("items") or [], start=1):
            if isinstance(entry, dict) and entry.get("metric") in PRAISE_MIN:
                metric_items.append((survey_id, position, entry["metric"]))
    if not metric_items:
        return [], 0
    a = SurveyAnswer

    def top(metric: str) -> ColumnElement:
        return or_(false(), *[and_(a.survey_id == sid, a.item == position)
                              for sid, position, name in metric_items if name == metric]) \
            & (a.perceived >= PRAISE_MIN[metric])

    csat, nps = top("csat"), top("nps")
    rows = q.session.execute(
        select(r.id, r.survey_id, r.record_id, r.submitted_at,
               func.max(case((csat, a.perceived))).label("csat"),
               func.max(case((nps, a.perceived))).label("nps"),
               func.count().over().label("total"))
        .select_from(r)
        .join(Record, _responses_about_subject(q, r))
        .join(a, and_(a.tenant_id == r.tenant_id, a.response_id == r.id))
        .where(q.in_period(r.submitted_at), or_(csat, nps))
        .group_by(r.id, r.survey_id, r.record_id, r.submitted_at)
        .order_by(r.submitted_at.desc(), r.id.desc())
        .limit(q.limit)).all()
    items = [{"source": "survey", "at": row.submitted_at, "record_id": row.record_id,
              "title": None, "survey_id": row.survey_id, "response_id": row.id,
              "metric": "csat" if row.csat is not None else "nps",
              "answer": row.csat if row.csat is not None else row.nps} for row in rows]
    return items, (rows[0].total if rows else 0)


def _actions(q: FileQuery) -> dict[str, Any]:
    """Corrective actions created in the period on the subject's live records, or owned
    by the member of staff's user; with the open, closed and overdue counts."""
    mine = [and_(Record.id.is_not(None), q.of_subject(Record), *q.live(Record))]
    if q.subject == "staff" and q.user_id is not None:
        mine.append(and_(Action.owner_id == q.user_id,
                         or_(Record.id.is_(None), and_(*q.live(Record)))))
    closed = Action.status.in_(CLOSED)
    overdue = and_(Action.due_at.is_not(None), Action.due_at < q.now, not_(closed))
    rows = q.session.execute(
        select(Action.id, Action.title, Action.source, Action.status, Action.record_id,
               Action.standard_code, Action.item_code, Action.owner_id, Action.due_at,
               Action.created_at, Action.done_at, Action.verified_at,
               overdue.label("overdue"),
               func.count().over().label("total"),
               func.sum(case((closed, 1), else_=0)).over().label("closed"),
               func.sum(case((overdue, 1), else_=0)).over().label("overdue_total"))
        .select_from(Action)
        .outerjoin(Record, and_(Record.tenant_id == Action.tenant_id, Record.id == Action.record_id))
        .where(q.in_period(Action.created_at), or_(*mine))
        .order_by(Action.created_at.desc(), Action.id.desc())
        .limit(q.limit)).all()
    total = rows[0].total if rows else 0
    closed_total = int(rows[0].closed or 0) if rows else 0
    return {
        "total": total,
        "open": total - closed_total,
        "closed": closed_total,
        "overdue": int(rows[0].overdue_total or 0) if rows else 0,
        "items": [{"id": r.id, "title": r.title, "source": r.source, "status": r.status,
                   "record_id": r.record_id, "standard_code": r.standard_code,
                   "item_code": r.item_code, "owner_id": r.owner_id, "due_at": r.due_at,
                   "overdue": bool(r.overdue), "created_at": r.created_at,
                   "done_at": r.done_at, "verified_at": r.verified_at} for r in rows],
    }


__all__ = ["FileQuery", "quality_file", "trend_months", "PRAISE_MIN", "PRAISE_TAG", "SUBJECTS"]
