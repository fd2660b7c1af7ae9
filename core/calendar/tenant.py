"""The current tenant's business calendar, from its ``calendars`` row or the default.

A tenant that has not set a calendar (``PUT /api/v1/calendar`` or a manifest's
``[calendar]``) works the **default calendar**: its own time zone (``tenants.timezone``),
Monday to Friday 09:00-12:00 and 13:00-18:00 (a lunch break from 12:00 to 13:00), no
public holidays (no country) and no extra days. See ``docs/calendars-and-workflows.md``.

:func:`tenant_calendar` costs one query per session: the calendar is kept in
the session's state (a tenant slot) and built objects are shared between sessions of the same document
(a process-wide LRU keyed by the document), so the holiday tables of a country are
computed once per process. :func:`forget_calendar` drops the session's copy; the API
calls it when the calendar changes.
"""

from __future__ import annotations

import json
from functools import lru_cache
from typing import Any

from marshmallow import fields
from sqlalchemy import and_, select

from servq.core.calendar.model import BusinessCalendar
from servq.core.db.state import TENANT, Slot
from servq.core.calendar.schema import DEFAULT_HOURS, CalendarSchema

#: The default working hours: Monday to Friday, a lunch break from 12:00 to 13:00.
DEFAULT_WORKING_HOURS: dict[str, list[str]] = DEFAULT_HOURS

_INFO_KEY: Slot[tuple] = Slot("servq.calendar", TENANT, __name__)  # (tenant id, calendar)


def default_document(timezone: str) -> dict[str, Any]:
    """The calendar document of a tenant that has none, in time zone ``timezone``."""
    return {
        "timezone": timezone,
        "working_hours": {day: list(spans) for day, spans in DEFAULT_WORKING_HOURS.items()},
        "country": None,
        "subdivision": None,
        "extra_holidays": [],
        "extra_working_days": [],
    }


def normalise(data: dict[str, Any]) -> dict[str, Any]:
    """Validate a calendar given as a plain dict and return its normal stored form.

    Raises ``marshmallow.ValidationError`` naming the bad field.
    """
    return BusinessCalendar.from_dict(data).to_dict()


class CalendarDocumentField(fields.Nested):
    """A calendar section (a manifest's ``[calendar]``): validated by
    :class:`~core.calendar.CalendarSchema`, loaded as its normal stored document, a plain
    dict that loads again unchanged (so a loaded manifest can be validated twice)."""

    def __init__(self, **kwargs):
        super().__init__(CalendarSchema, **kwargs)

    def _deserialize(self, value, attr, data, **kwargs):
        loaded = super()._deserialize(value, attr, data, **kwargs)
        return BusinessCalendar(**loaded).to_dict()


@lru_cache(maxsize=512)
def _build(document_json: str) -> BusinessCalendar:
    return BusinessCalendar.from_dict(json.loads(document_json))


def build_calendar(document: dict[str, Any]) -> BusinessCalendar:
    """The :class:`BusinessCalendar` of a stored document (shared per process)."""
    return _build(json.dumps(document, sort_keys=True))


def load_calendar(session) -> tuple[dict[str, Any], bool]:
    """``(document, stored)``: the tenant's calendar document and whether it has a row
    (``False``: the default document of its time zone). One query."""
    from servq.core.models import Tenant, TenantCalendar

    tenant_id = session.tenant_id
    if tenant_id is None:
        raise RuntimeError("tenant_calendar needs a tenant-scoped session")
    row = session.execute(
        select(Tenant.timezone, TenantCalendar.document)
        .outerjoin(TenantCalendar, and_(TenantCalendar.tenant_id == Tenant.id))
        .where(Tenant.id == tenant_id)).first()
    if row is None:
        raise LookupError(f"no tenant {tenant_id}")
    timezone, document = row
    if document:
        return document, True
    return default_document(timezone or "UTC"), False


def tenant_calendar(session) -> BusinessCalendar:
    """The business calendar of the session's tenant (the default one when it has none).

    Cached in the session's state for the session's tenant; :func:`forget_calendar` clears it.
    """
    cached = session.state.get(_INFO_KEY)
    if cached is not None and cached[0] == session.tenant_id:
        return cached[1]
    document, _stored = load_calendar(session)
    calendar = build_calendar(document)
    session.state.set(_INFO_KEY, (session.tenant_id, calendar))
    return calendar


def forget_calendar(session) -> None:
    """Drop the calendar cached in ``session`` (call after changing it)."""
    session.state.pop(_INFO_KEY)
