"""Recurring obligations: periods cut by an RRULE, met by records, missed otherwise.

A :class:`~core.models.Schedule` says "a record of kind K (scored against standard S) at
site X, on every occurrence of RRULE R from DTSTART". Its periods (occurrence *i* opens
period *i*, occurrence *i + 1* closes it, in the tenant's time zone) are pure arithmetic,
in :mod:`core.deadlines.periods`; this module holds the obligations themselves: creating
and changing them, matching records to their periods, and reporting missed ones.

Outcome of a period ``[start, end)``:

* **met**: ``min_count`` (default 1) live records of the kind (at the site; with an
  evaluation against the standard when one is named; whose ``data`` has the top-level
  values of ``match``) have ``occurred_at`` in the period;
* **missed**: none, and the period ended more than ``grace`` ago (the time allowed to
  file a record late);
* **open**: none yet, and there is still time;
* **not_required**: with ``working_days``, the period holds no working time.

With ``per = "staff"`` the outcome is judged per person (:mod:`core.deadlines.quotas`).

:func:`compliance` lists the periods of a window with one SQL query per schedule (the
periods go in as a ``VALUES`` table, each matched by an indexed correlated subquery), and
:func:`scan` (every minute, from the deadline tick) reports each newly missed period once:
a ``schedule.missed`` notification and, when the schedule says so, a corrective action.
"""

from __future__ import annotations

import json
import re
import uuid
from datetime import datetime, timezone
from typing import Any, Mapping
from zoneinfo import ZoneInfo

from sqlalchemy import (Integer, and_, cast, column, exists, func, literal, literal_column, select,
                        values)
from sqlalchemy.dialects.postgresql import JSONB

from servq.core.audit import apply_changes, audit, jsonable
from servq.core.calendar.tenant import tenant_calendar
from servq.core.db import UTCDateTime, utcnow
from servq.core.deadlines.periods import MAX_PERIODS, Period, Recurrence, TooManyPeriods, validate_rrule
from servq.core.deadlines.quotas import (DEFAULT_STAFF_FIELD, MAX_CELLS, check_quota, normal_selector,
                                         obligated, required, selected_staff, staff_counts)
from servq.core.evaluation.actions import open_action
from servq.core.models import Evaluation, Record, Schedule, Site, Staff, StandardVersion
from servq.core.notify.outbox import emit
from servq.core.standards import standard_in_force

ROLES = ("owner", "admin", "manager", "inspector", "agent", "viewer")
#: A key of ``match``: a top-level field of a record's ``data``.
MATCH_KEY_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,62}$")
#: Most fields one ``match`` may name.
MAX_MATCH = 10


class ScheduleInvalid(ValueError):
    """A schedule's fields were refused; ``errors`` maps field → messages."""

    def __init__(self, errors: dict[str, list[str]], message: str = "The schedule is not valid."):
        super().__init__(message)
        self.errors = errors
        self.message = message


def schedule_zone(session) -> ZoneInfo:
    """The time zone the tenant's periods are cut in (its business calendar's)."""
    return tenant_calendar(session).zone


# -- matching records -------------------------------------------------------------------------


def check_match(match: Any) -> list[str]:
    """Why ``match`` cannot be a schedule's ``match`` (``[]`` when it can): an object of at
    most :data:`MAX_MATCH` top-level ``data`` fields, each required to equal a string, an
    integer or a boolean."""
    if not isinstance(match, Mapping):
        return ["Give an object of data fields and the values they must have."]
    errors = []
    if len(match) > MAX_MATCH:
        errors.append(f"At most {MAX_MATCH} fields.")
    for key, value in match.items():
        if not isinstance(key, str) or not MATCH_KEY_RE.match(key):
            errors.append(f"{key!r} is not a top-level data field name (letters, digits, '_').")
        elif isinstance(value, float) or not isinstance(value, (str, int, bool)):
            errors.append(f"{key}: the value must be a string, an integer or a boolean.")
        elif isinstance(value, str) and (len(value) > 200 or "\x00" in value):
            errors.append(f"{key}: at most 200 characters, no NUL.")
        elif isinstance(value, int) and not -2**63 <= value < 2**63:
            errors.append(f"{key}: the integer is out of range.")
    return errors


def match_clauses(match: Mapping[str, Any] | None, dialect: str, record=Record) -> list:
    """SQL conditions: ``record.data`` has each top-level value of ``match``, with its JSON
    type (``"5"`` does not match ``5``, nor ``1`` ``true``)."""
    clauses = []
    for key, value in sorted((match or {}).items()):
        if dialect == "postgresql":
            clauses.append(record.data[key] == cast(literal(json.dumps(value)), JSONB))
            continue
        path = f'$."{key}"'
        kind = func.json_type(record.data, path)
        if isinstance(value, bool):
            clauses.append(kind == ("true" if value else "false"))
        else:
            clauses.append(and_(kind == ("integer" if isinstance(value, int) else "text"),
                                func.json_extract(record.data, path) == value))
    return clauses


def record_conditions(session, schedule: Schedule) -> list:
    """What a record must meet, besides lying in a period, to count for ``schedule``: live,
    of its kind, at its site, evaluated against its standard, with its ``match`` values."""
    conditions = [Record.kind == schedule.kind, Record.deleted_at.is_(None),
                  *match_clauses(schedule.match, session.get_bind().dialect.name)]
    if schedule.site_id is not None:
        conditions.append(Record.site_id == schedule.site_id)
    if schedule.standard_code:
        conditions.append(exists().where(Evaluation.record_id == Record.id,
                                         Evaluation.standard_code == schedule.standard_code))
    return conditions


def matches_statement(session, schedule: Schedule, periods: list[Period], tag: int = 0,
                      count: bool = False):
    """``SELECT tag, n, first matching record id`` for each of ``periods`` (see
    :func:`period_counts`), and with ``count`` the number of matching records as ``n_records``;
    several schedules' statements may be joined with ``UNION ALL``. It ignores
    ``per = "staff"`` and ``min_count``: use :func:`compliance` for the outcome."""
    table = values(column("n", Integer), column("start_at", UTCDateTime()),
                   column("end_at", UTCDateTime()), name=f"periods{tag}") \
        .data([(p.index, p.start, p.end) for p in periods]).cte(f"periods{tag}")
    conditions = [*record_conditions(session, schedule),
                  Record.occurred_at >= table.c.start_at, Record.occurred_at < table.c.end_at]
    first = select(Record.id).where(*conditions).order_by(Record.occurred_at, Record.id).limit(1)
    columns = [literal_column(str(int(tag))).label("tag"), table.c.n.label("n"),
               first.correlate(table).scalar_subquery().label("record_id")]
    if count:
        columns.append(select(func.count()).select_from(Record).where(*conditions)
                       .correlate(table).scalar_subquery().label("n_records"))
    return select(*columns)


def period_counts(session, schedule: Schedule, periods: list[Period]) -> dict[int, tuple]:
    """``{period index: (first matching record id, matching records)}``: one query.

    The periods are a ``VALUES`` table; each row's first record and count are correlated
    subqueries served by the records' ``(tenant_id, site_id, occurred_at)`` or
    ``(tenant_id, kind, occurred_at)`` index.
    """
    if not periods:
        return {}
    stmt = matches_statement(session, schedule, periods, count=True)
    return {n: (record_id, count) for _tag, n, record_id, count in session.execute(stmt)}


def compliance(session, schedule: Schedule, since: datetime | None = None,
               until: datetime | None = None, now: datetime | None = None,
               staff_id: uuid.UUID | None = None) -> dict[str, Any]:
    """The periods of ``schedule`` overlapping ``[since, until)`` with their outcome.

    Defaults: from the schedule's start until now (the current period included). Each
    period has its ``count`` of matching records; with ``per = "staff"`` also ``staff``,
    each obligated person's count and outcome (``staff_id`` narrows to one person), and the
    period is missed when anyone missed it. Two queries at most: the staff, and the counts.

    :raises core.deadlines.periods.TooManyPeriods: when the window holds more than
        :data:`MAX_PERIODS` periods (or, per staff, more than ``MAX_CELLS`` period × person
        cells).
    """
    now = now or utcnow()
    since = since or schedule.dtstart
    until = until or now
    calendar = tenant_calendar(session)
    recurrence = Recurrence(schedule, calendar.zone)
    periods = recurrence.periods(since, until) if until > since else []
    need = required(schedule, periods, calendar)
    per_staff = schedule.per == "staff"
    quota = schedule.min_count or 1
    people: list[Staff] = []
    if per_staff:
        people = selected_staff(session, schedule, staff_id)
        if len(periods) * len(people) > MAX_CELLS:
            raise TooManyPeriods(f"more than {MAX_CELLS} period × staff cells")
        counts = staff_counts(session, schedule, [p for p in periods if p.index in need], people,
                              record_conditions(session, schedule))
    else:
        found = period_counts(session, schedule, [p for p in periods if p.index in need])
    summary = {"met": 0, "missed": 0, "open": 0}
    if schedule.working_days:
        summary["not_required"] = 0
    totals = {person.id: {"staff_id": person.id, "code": person.code, "name": person.name,
                          "met": 0, "missed": 0, "open": 0} for person in people}
    rows = []
    for period in periods:
        late = period.deadline <= now
        row = {"start": period.start, "end": period.end, "deadline": period.deadline,
               "record_id": None, "count": 0}
        if period.index not in need:
            row["outcome"] = "not_required"
        elif per_staff:
            row["staff"] = []
            for person in people:
                if not obligated(person, period):
                    continue
                count = counts.get((period.index, person.id), 0)
                outcome = "met" if count >= quota else ("missed" if late else "open")
                totals[person.id][outcome] += 1
                row["count"] += count
                row["staff"].append({"staff_id": person.id, "code": person.code,
                                     "name": person.name, "count": count, "outcome": outcome})
            outcomes = {cell["outcome"] for cell in row["staff"]}
            row["outcome"] = ("missed" if "missed" in outcomes else
                              "open" if "open" in outcomes else "met")
        else:
            record_id, count = found.get(period.index, (None, 0))
            row.update(record_id=record_id, count=count)
            row["outcome"] = "met" if count >= quota else ("missed" if late else "open")
        summary[row["outcome"]] += 1
        rows.append(row)
    report = {"schedule_id": schedule.id, "since": since, "until": until, "periods": rows,
              "summary": summary}
    if per_staff:
        report["staff"] = list(totals.values())
    return report


# -- creating and changing --------------------------------------------------------------------


def _check(session, fields: Mapping[str, Any], kinds: Mapping[str, Any] | None) -> dict[str, list[str]]:
    errors: dict[str, list[str]] = {}
    if kinds is not None and fields.get("kind") is not None and fields["kind"] not in kinds:
        errors["kind"] = [f"Unknown record kind {fields['kind']!r}; this tenant may use: "
                          f"{', '.join(sorted(kinds)) or 'none'}."]
    if fields.get("site_id") is not None and session.scalar(
            select(Site.id).where(Site.id == fields["site_id"])) is None:
        errors["site_id"] = ["No such site in this tenant."]
    code = fields.get("standard_code")
    if code and not _standard_exists(session, code):
        errors["standard_code"] = [f"No standard {code!r} for this tenant."]
    roles = fields.get("escalate_to") or ()
    bad = [r for r in roles if r not in ROLES]
    if bad:
        errors["escalate_to"] = [f"Unknown role(s) {bad}: use {', '.join(ROLES)}."]
    if fields.get("dtstart") is not None and fields["dtstart"].tzinfo is None:
        errors["dtstart"] = ["Give the start with a time zone offset."]
    if fields.get("rrule") is not None and fields.get("dtstart") is not None and "dtstart" not in errors:
        try:
            validate_rrule(fields["rrule"], fields["dtstart"], schedule_zone(session))
        except ValueError as exc:
            errors["rrule"] = [str(exc)]
    if fields.get("grace_seconds") is not None and fields["grace_seconds"] < 0:
        errors["grace"] = ["The grace period cannot be negative."]
    if "match" in fields and check_match(fields["match"]):
        errors["match"] = check_match(fields["match"])
    return errors


def _standard_exists(session, code: str) -> bool:
    if session.scalar(select(StandardVersion.id).where(StandardVersion.code == code).limit(1)):
        return True
    return standard_in_force(session, code) is not None


def _reset_watch(session, schedule: Schedule, now: datetime) -> None:
    """Judge periods from ``now`` on: the ones already over are not *newly* missed."""
    schedule.checked_until = now
    schedule.next_check_at = (Recurrence(schedule, schedule_zone(session)).next_deadline(now)
                              if schedule.active else None)


def _defaults(fields: Mapping[str, Any]) -> dict[str, Any]:
    """``None`` for an optional setting means its default (no grace, no roles)."""
    out = dict(fields)
    if "grace_seconds" in out and out["grace_seconds"] is None:
        out["grace_seconds"] = 0
    if "escalate_to" in out and out["escalate_to"] is None:
        out["escalate_to"] = []
    if "match" in out and out["match"] is None:
        out["match"] = {}
    for name, default in (("per", "schedule"), ("min_count", 1), ("working_days", False)):
        if name in out and out[name] is None:
            out[name] = default
    return out


#: The fields of a schedule a caller may set.
FIELDS = ("key", "title", "kind", "standard_code", "match", "site_id", "rrule", "dtstart",
          "grace_seconds", "active", "action_on_miss", "escalate_to", "per", "staff_selector",
          "staff_field", "min_count", "working_days")
#: Changing one of these starts the watch afresh.
_RULE_FIELDS = ("kind", "standard_code", "match", "site_id", "rrule", "dtstart", "grace_seconds",
                "active", "per", "staff_selector", "staff_field", "min_count", "working_days")
#: The quota settings (:mod:`core.deadlines.quotas`) and their defaults.
_QUOTA_DEFAULTS = {"per": "schedule", "staff_selector": None, "staff_field": None, "min_count": 1,
                   "working_days": False}


def _normal_quota(values_: dict[str, Any]) -> None:
    """The quota settings as stored: the selector normalised, the default staff field
    written out for a per-staff schedule."""
    if values_.get("per") == "staff":
        values_["staff_selector"] = normal_selector(values_.get("staff_selector"))
        values_["staff_field"] = values_.get("staff_field") or DEFAULT_STAFF_FIELD


def create_schedule(session, *, kinds: Mapping[str, Any] | None = None, actor_id: uuid.UUID | None = None,
                    now: datetime | None = None, **fields: Any) -> Schedule:
    """Create a schedule in the session's tenant (audited; the caller commits).

    Fields: ``title``, ``kind``, ``rrule``, ``dtstart`` (required), ``key`` (plugins:
    makes the call idempotent, the existing schedule with that key is returned
    unchanged), ``standard_code``, ``match`` (top-level ``data`` values a record must
    have), ``site_id``, ``grace_seconds``, ``active``, ``action_on_miss``, ``escalate_to``,
    and the quota (:mod:`core.deadlines.quotas`): ``min_count``, ``per`` (``"schedule"`` or
    ``"staff"``), ``staff_selector``, ``staff_field`` (default ``staff_id`` when per staff),
    ``working_days``. ``kinds`` (the tenant's record kinds), when given, restricts ``kind``.

    :raises ScheduleInvalid: naming each bad field; nothing is added.
    """
    unknown = sorted(set(fields) - set(FIELDS))
    if unknown:
        raise ScheduleInvalid({name: ["Unknown field."] for name in unknown})
    fields = _defaults(fields)
    missing = [name for name in ("title", "kind", "rrule", "dtstart") if fields.get(name) in (None, "")]
    if missing:
        raise ScheduleInvalid({name: ["Missing data for required field."] for name in missing})
    if fields.get("key"):
        found = session.scalar(select(Schedule).where(Schedule.key == fields["key"]))
        if found is not None:
            return found
    errors = _check(session, fields, kinds)
    errors.update(check_quota(session, {**_QUOTA_DEFAULTS, **fields}, fields, ROLES))
    if errors:
        raise ScheduleInvalid(errors)
    now = now or utcnow()
    values_ = {"grace_seconds": 0, "active": True, "action_on_miss": False, "escalate_to": [],
               "match": {}, **_QUOTA_DEFAULTS, **fields}
    values_["match"] = dict(values_["match"])
    _normal_quota(values_)
    values_["rrule"] = validate_rrule(values_["rrule"], values_["dtstart"], schedule_zone(session))
    values_["dtstart"] = values_["dtstart"].astimezone(timezone.utc)
    values_["escalate_to"] = list(values_["escalate_to"] or [])
    schedule = Schedule(id=uuid.uuid4(), created_by=actor_id, created_at=now, updated_at=now,
                        checked_until=now, **values_)
    _reset_watch(session, schedule, now)
    session.add(schedule)
    session.flush()
    audit(session, "schedules", schedule.id, "created", actor_id,
          {name: [None, jsonable(value)] for name, value in values_.items()})
    return schedule


def update_schedule(session, schedule: Schedule, changes: Mapping[str, Any], *,
                    kinds: Mapping[str, Any] | None = None, actor_id: uuid.UUID | None = None,
                    now: datetime | None = None) -> dict[str, list]:
    """Apply ``changes`` (audited; the caller commits). Changing the rule, its start, the
    kind, match, site, standard or grace, or re-activating, judges periods from now on.

    :raises ScheduleInvalid: naming each bad field; the schedule is left unchanged.
    """
    unknown = sorted(set(changes) - set(FIELDS))
    if unknown:
        raise ScheduleInvalid({name: ["Unknown field."] for name in unknown})
    changes = _defaults(changes)
    if changes.get("per") == "schedule":  # no longer per person: the selector goes too
        changes.setdefault("staff_selector", None)
        changes.setdefault("staff_field", None)
    for name in ("title", "kind", "rrule", "dtstart", "active", "action_on_miss"):
        if name in changes and changes[name] in (None, ""):
            raise ScheduleInvalid({name: ["Field may not be null."]})
    merged = {name: getattr(schedule, name) for name in FIELDS}
    merged.update(changes)
    check = {name: merged[name] for name in changes}
    if "rrule" in changes or "dtstart" in changes:
        check.update(rrule=merged["rrule"], dtstart=merged["dtstart"])
    errors = _check(session, check, kinds)
    errors.update(check_quota(session, merged, changes, ROLES))
    if errors:
        raise ScheduleInvalid(errors)
    if changes.get("key") and changes["key"] != schedule.key and session.scalar(
            select(Schedule.id).where(Schedule.key == changes["key"])):
        raise ScheduleInvalid({"key": [f"A schedule with key {changes['key']!r} exists."]})
    new = dict(changes)
    if "rrule" in new:
        new["rrule"] = validate_rrule(new["rrule"], merged["dtstart"], schedule_zone(session))
    if "dtstart" in new:
        new["dtstart"] = new["dtstart"].astimezone(timezone.utc)
    if "escalate_to" in new:
        new["escalate_to"] = list(new["escalate_to"] or [])
    if "match" in new:
        new["match"] = dict(new["match"])
    if "per" in new or "staff_selector" in new or "staff_field" in new:
        new.update((name, merged[name]) for name in ("per", "staff_selector", "staff_field"))
        _normal_quota(new)
    applied = apply_changes(schedule, new)
    if applied:
        now = now or utcnow()
        if any(name in applied for name in _RULE_FIELDS):
            _reset_watch(session, schedule, now)
        schedule.updated_at = now
        session.flush()
        audit(session, "schedules", schedule.id, "changed", actor_id, applied)
    return applied


# -- the watch --------------------------------------------------------------------------------


def scan(session, now: datetime | None = None) -> int:
    """Report the periods of the tenant's active schedules missed since the last scan.

    Each newly missed period: ``schedule.missed`` (once: the dedupe key names the
    schedule and the period) to the schedule's ``escalate_to`` roles and, with
    ``action_on_miss``, a corrective action (source ``deadline``, idempotent). Per staff
    (``per = "staff"``), each person below the quota in a period is reported on their own
    (the dedupe key names them too). With ``working_days`` a period without working time is
    never reported. One indexed query finds the schedules whose next deadline has come; one
    query per such schedule judges its periods (per staff: one for the staff, one grouped
    count). The caller commits. Returns the missed periods reported (per staff: one for
    each person and period).
    """
    now = now or utcnow()
    due = list(session.scalars(select(Schedule).where(Schedule.active.is_(True),
                                                      Schedule.next_check_at <= now)))
    if not due:
        return 0
    calendar = tenant_calendar(session)
    zone = calendar.zone
    reported = 0
    for schedule in due:
        recurrence = Recurrence(schedule, zone)
        periods = recurrence.deadlines_between(schedule.checked_until, now)
        need = required(schedule, periods, calendar)
        owed = [p for p in periods if p.index in need]
        quota = schedule.min_count or 1
        if schedule.per == "staff":
            people = selected_staff(session, schedule)
            counts = staff_counts(session, schedule, owed, people, record_conditions(session, schedule))
            for period in owed:
                for person in people:
                    count = counts.get((period.index, person.id), 0)
                    if obligated(person, period) and count < quota:
                        reported += 1
                        _missed(session, schedule, period, zone, count, person)
        else:
            found = period_counts(session, schedule, owed)
            for period in owed:
                count = found.get(period.index, (None, 0))[1]
                if count < quota:
                    reported += 1
                    _missed(session, schedule, period, zone, count)
        if len(periods) >= MAX_PERIODS:
            schedule.checked_until = periods[-1].deadline  # the next scan goes on from here
        else:
            schedule.checked_until = now
        schedule.next_check_at = recurrence.next_deadline(schedule.checked_until)
    session.flush()
    return reported


def _missed(session, schedule: Schedule, period: Period, zone: ZoneInfo, count: int = 0,
            person: Staff | None = None) -> None:
    payload = {"schedule_id": str(schedule.id), "key": schedule.key, "title": schedule.title,
               "kind": schedule.kind, "standard_code": schedule.standard_code,
               "match": dict(schedule.match or {}),
               "site_id": str(schedule.site_id) if schedule.site_id else None,
               "period_start": period.start.isoformat(), "period_end": period.end.isoformat(),
               "deadline": period.deadline.isoformat(), "count": count,
               "min_count": schedule.min_count or 1}
    key = f"{schedule.id}:{period.start.isoformat()}"
    subject = f"No {schedule.kind} record"
    if person is not None:
        payload.update(staff_id=str(person.id), staff_code=person.code, staff_name=person.name,
                       staff_field=schedule.staff_field or DEFAULT_STAFF_FIELD)
        key = f"{key}:{person.id}"
        subject = f"{count} of {schedule.min_count or 1} {schedule.kind} records by {person.name} ({person.code})"
    elif (schedule.min_count or 1) > 1:
        subject = f"{count} of {schedule.min_count} {schedule.kind} records"
    emit(session, "schedule.missed", payload, roles=schedule.escalate_to or (),
         dedupe_key=f"schedule.missed:{key}")
    if schedule.action_on_miss:
        day = period.start.astimezone(zone).date().isoformat()
        who = f", {person.code}" if person is not None else ""
        open_action(session, title=f"Missed: {schedule.title} ({day}{who})",
                    standard=schedule.standard_code, source="deadline",
                    source_key=f"schedule:{key}", roles=tuple(schedule.escalate_to or ()),
                    description=(f"{subject} for the period "
                                 f"{period.start.isoformat()} – {period.end.isoformat()} of "
                                 f"schedule {schedule.title!r}."))
