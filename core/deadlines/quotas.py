"""Quotas of a recurring obligation: N records a period, per staff member, on working days.

A :class:`~core.models.Schedule` asks for ``min_count`` matching records in each period
(default 1). With ``per = "staff"`` it asks them of **each** staff member its
``staff_selector`` chooses, and a period is judged per person: missed for each one whose
count is below the quota. ``staff_field`` says which field of a record names the person:

* ``staff_id`` (the default): the record's staff column, a staff id;
* ``created_by``: the user who filed the record, i.e. the staff member linked to that user
  (``staff.user_id``); staff without a linked user are not obligated then;
* ``data.<field>``: a top-level ``data`` value holding the staff member's id or the id of
  the user linked to them (an inspection's ``data.inspector_id`` is a user id).

The selector (all conditions given must hold; ``{}`` is every active staff member):
``ids`` (listed staff), ``site_id`` (staff of a site), ``title`` (staff whose title is
exactly this, e.g. a position), ``role`` (staff linked to a user with this role in the
tenant). Only active staff are obligated, and a person only for the periods that end
after their staff row was created. The selector is read when the periods are judged.

With ``working_days``, a period holding no working time of the tenant's business
calendar (weekends per its working week, holidays, extra days off) is **not required**:
never missed, never reported, listed as ``not_required``.

The counts are set-based: one grouped query (periods as a ``VALUES`` table joined to the
records, grouped by period and person) per page of periods, and one query for the
selected staff. This module builds no record filter of its own: the caller
(:mod:`core.deadlines.schedules`) passes the conditions a record must meet.
"""

from __future__ import annotations

import re
import uuid
from datetime import datetime, timedelta
from typing import Any, Iterable, Mapping

from sqlalchemy import Integer, and_, column, func, select, values

from servq.core.db import UTCDateTime
from servq.core.deadlines.periods import Period
from servq.core.models import Membership, Record, Site, Staff

#: Whose obligation a period is.
PER = ("schedule", "staff")
#: Conditions a staff selector may hold.
SELECTOR_KEYS = ("ids", "site_id", "title", "role")
#: The record columns that may name the person.
COLUMN_FIELDS = ("staff_id", "created_by")
#: The default ``staff_field``.
DEFAULT_STAFF_FIELD = "staff_id"
#: Largest quota.
MAX_MIN_COUNT = 10_000
#: Most staff ids a selector may list.
MAX_IDS = 1000
#: Most period × person cells one compliance report holds.
MAX_CELLS = 20_000
_DATA_FIELD_RE = re.compile(r"^data\.([A-Za-z_][A-Za-z0-9_]{0,62})$")


# -- validation -------------------------------------------------------------------------------


def check_quota(session, merged: Mapping[str, Any], changed: Iterable[str],
                roles: Iterable[str]) -> dict[str, list[str]]:
    """Errors (field → messages) of the quota settings of ``merged`` (the schedule's fields
    after the change); only settings that ``changed`` or depend on one that did are
    checked against the database."""
    changed = set(changed)
    errors: dict[str, list[str]] = {}
    per = merged.get("per") or "schedule"
    if per not in PER:
        errors["per"] = [f"Unknown value {per!r}: use {' or '.join(PER)}."]
        return errors
    count = merged.get("min_count")
    if count is not None and (isinstance(count, bool) or not isinstance(count, int)
                              or not 1 <= count <= MAX_MIN_COUNT):
        errors["min_count"] = [f"Give a whole number from 1 to {MAX_MIN_COUNT}."]
    selector, field = merged.get("staff_selector"), merged.get("staff_field")
    if per != "staff":
        if selector is not None:
            errors["staff"] = ["A staff selector needs per = 'staff'."]
        if field is not None:
            errors["staff_field"] = ["A staff field needs per = 'staff'."]
        return errors
    if field is not None and field not in COLUMN_FIELDS and not _DATA_FIELD_RE.match(str(field)):
        errors["staff_field"] = [f"Unknown field {field!r}: use staff_id, created_by or data.<field>."]
    if selector is None:
        errors["staff"] = ["Say who is obligated: a selector such as {\"role\": \"inspector\"} "
                           "or {} for every active staff member."]
    elif changed & {"per", "staff_selector"}:
        problems = check_selector(session, selector, tuple(roles))
        if problems:
            errors["staff"] = problems
    return errors


def check_selector(session, selector: Any, roles: tuple[str, ...]) -> list[str]:
    """Why ``selector`` cannot choose staff (``[]`` when it can)."""
    if not isinstance(selector, Mapping):
        return ["Give an object with ids, site_id, title and/or role."]
    unknown = sorted(set(selector) - set(SELECTOR_KEYS))
    if unknown:
        return [f"Unknown selector key(s) {unknown}: use {', '.join(SELECTOR_KEYS)}."]
    errors = []
    if "ids" in selector:
        ids = _uuids(selector["ids"])
        if ids is None or not ids or len(ids) > MAX_IDS:
            errors.append(f"ids: give a list of 1 to {MAX_IDS} staff ids.")
        else:
            found = set(session.scalars(select(Staff.id).where(Staff.id.in_(ids))))
            missing = [str(i) for i in ids if i not in found]
            if missing:
                errors.append(f"ids: no staff member {', '.join(missing)} in this tenant.")
    if "site_id" in selector:
        site = _uuid(selector["site_id"])
        if site is None or session.scalar(select(Site.id).where(Site.id == site)) is None:
            errors.append("site_id: no such site in this tenant.")
    if "title" in selector and (not isinstance(selector["title"], str)
                                or not 1 <= len(selector["title"]) <= 200):
        errors.append("title: give a staff title of 1 to 200 characters.")
    if "role" in selector and selector["role"] not in roles:
        errors.append(f"role: unknown role {selector['role']!r}; use {', '.join(roles)}.")
    return errors


def normal_selector(selector: Mapping[str, Any] | None) -> dict[str, Any] | None:
    """The selector as stored: ids and site id as canonical text."""
    if selector is None:
        return None
    out = dict(selector)
    if "ids" in out:
        out["ids"] = sorted({str(i) for i in _uuids(out["ids"]) or []})
    if "site_id" in out:
        out["site_id"] = str(_uuid(out["site_id"]))
    return out


def _uuid(value: Any) -> uuid.UUID | None:
    try:
        return value if isinstance(value, uuid.UUID) else uuid.UUID(str(value))
    except (ValueError, TypeError, AttributeError):
        return None


def _uuids(values_: Any) -> list[uuid.UUID] | None:
    if not isinstance(values_, (list, tuple)):
        return None
    out = [_uuid(v) for v in values_]
    return None if any(v is None for v in out) else out


# -- who is obligated -------------------------------------------------------------------------


def selected_staff(session, schedule, staff_id: uuid.UUID | None = None) -> list[Staff]:
    """The active staff members ``schedule`` obligates (by code), one query; ``staff_id``
    narrows to one of them."""
    selector = schedule.staff_selector or {}
    stmt = select(Staff).where(Staff.active.is_(True)).order_by(Staff.code, Staff.id)
    if "ids" in selector:
        stmt = stmt.where(Staff.id.in_(_uuids(selector["ids"]) or []))
    if "site_id" in selector:
        stmt = stmt.where(Staff.site_id == _uuid(selector["site_id"]))
    if "title" in selector:
        stmt = stmt.where(Staff.title == selector["title"])
    if "role" in selector:
        stmt = stmt.where(Staff.user_id.in_(select(Membership.user_id)
                                            .where(Membership.role == selector["role"])))
    if (schedule.staff_field or DEFAULT_STAFF_FIELD) == "created_by":
        stmt = stmt.where(Staff.user_id.is_not(None))
    if staff_id is not None:
        stmt = stmt.where(Staff.id == staff_id)
    return list(session.scalars(stmt))


def obligated(person: Staff, period: Period) -> bool:
    """Whether ``person`` owes ``period``: their staff row existed before it ended."""
    return person.created_at is None or person.created_at < period.end


# -- working days -----------------------------------------------------------------------------


def required(schedule, periods: list[Period], calendar) -> set[int]:
    """Indexes of the ``periods`` that are obligations: all of them, or with
    ``working_days`` those holding working time of ``calendar`` (a
    :class:`~core.calendar.BusinessCalendar`)."""
    if not schedule.working_days:
        return {p.index for p in periods}
    return {p.index for p in periods if has_working_time(calendar, p.start, p.end)}


def has_working_time(calendar, start: datetime, end: datetime) -> bool:
    """Whether ``[start, end)`` overlaps a working interval of ``calendar``."""
    day, last = calendar.local_date(start), calendar.local_date(end)
    while day <= last:
        for a, b in calendar.working_intervals(day):
            if a < end and b > start:
                return True
        day += timedelta(days=1)
    return False


# -- counting ---------------------------------------------------------------------------------


def _periods_table(periods: list[Period], name: str = "quota_periods"):
    return values(column("n", Integer), column("start_at", UTCDateTime()),
                  column("end_at", UTCDateTime()), name=name) \
        .data([(p.index, p.start, p.end) for p in periods]).cte(name)


def _person_keys(schedule, people: list[Staff]):
    """(SQL expression naming the person on a record, {value: staff id})."""
    field = schedule.staff_field or DEFAULT_STAFF_FIELD
    if field == "staff_id":
        return Record.staff_id, {p.id: p.id for p in people}
    if field == "created_by":
        return Record.created_by, {p.user_id: p.id for p in people if p.user_id is not None}
    name = _DATA_FIELD_RE.match(field).group(1)
    keys = {str(p.id): p.id for p in people}
    keys.update({str(p.user_id): p.id for p in people if p.user_id is not None})
    return func.lower(Record.data[name].as_string()), keys


def staff_counts(session, schedule, periods: list[Period], people: list[Staff],
                 conditions: list) -> dict[tuple[int, uuid.UUID], int]:
    """``{(period index, staff id): matching records}`` (absent: none), one grouped query.

    ``conditions`` are what a record must meet besides lying in the period (kind, site,
    standard, ``match``, not deleted)."""
    if not periods or not people:
        return {}
    key, keys = _person_keys(schedule, people)
    if not keys:
        return {}
    table = _periods_table(periods)
    stmt = (select(table.c.n, key.label("person"), func.count().label("n_records"))
            .select_from(table)
            .join(Record, and_(Record.occurred_at >= table.c.start_at,
                               Record.occurred_at < table.c.end_at))
            .where(*conditions, key.in_(list(keys)))
            .group_by(table.c.n, key))
    out: dict[tuple[int, uuid.UUID], int] = {}
    for n, person, count in session.execute(stmt):
        staff_id = keys.get(person if not isinstance(person, str) else person.lower())
        if staff_id is None and isinstance(person, str):
            staff_id = keys.get(str(_uuid(person)))
        if staff_id is not None:
            out[(n, staff_id)] = out.get((n, staff_id), 0) + count
    return out
