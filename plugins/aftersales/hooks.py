"""What the after-sales plugin does when its records are created or change.

Tickets: the values that depend on the workflow are worked out from the record's status
and stamps on every write (before it is scored): ``fixed_first_time`` (false once
re-diagnosed, true when closed without), ``diagnosis_recorded``, ``plan_recorded``,
``customer_confirmed``, ``escalated_when_stuck``, ``progress_log`` and
``max_progress_gap_hours``. A new ticket about a serial number the same customer reported
within ``repeat_contact_days`` marks the earlier ticket ``repeat_contact``.

Visits: ``completed`` without a signed sheet can only come from a client that bypassed the
guard; the visit's critical item fails it all the same.

Daily reviews: ``unlisted_open_tickets`` counts the open tickets of the review's site
received before the end of its day that it does not list (one query).
"""

from __future__ import annotations

import re
from datetime import datetime, time, timedelta
from itertools import pairwise
from typing import Any

from sqlalchemy import select

from servq import Record, plugin_settings, schedule_zone, utcnow
from servq.plugins.aftersales.config import AftersalesConfig
from servq.plugins.aftersales.kinds import OPEN_TICKET_STATUSES

TICKET = "aftersales.ticket"
REVIEW = "aftersales.daily_review"
PLUGIN = "aftersales"
_KINDS = frozenset({TICKET, REVIEW})


def configuration(session) -> dict[str, Any]:
    return AftersalesConfig().load(plugin_settings(session, PLUGIN))


def _at(value: Any) -> datetime | None:
    if isinstance(value, datetime):
        return value
    if isinstance(value, str):
        try:
            return datetime.fromisoformat(value)
        except ValueError:
            return None
    return None


_LIMIT_RE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(working\s+)?(m|minutes?|h|hours?|d|days?)\s*$")


def limit_hours(text: str) -> float:
    """A limit as wall-clock hours, to judge "open past half the resolution limit": working
    days count as calendar days (an approximation, said in the README)."""
    match = _LIMIT_RE.match(text or "")
    if not match:
        return float("inf")
    number, unit = float(match.group(1)), match.group(3)[0]
    return number / 60 if unit == "m" else number if unit == "h" else number * 24


def derive_ticket(record, config: dict[str, Any] | None, now: datetime, status_change=None) -> None:
    data = dict(record.data or {})
    stamps = record.timestamps or {}
    status = record.status
    done = status in ("resolved", "closed")
    diagnosis, plan = data.get("diagnosis") or {}, data.get("plan") or {}
    data["diagnosis_recorded"] = True if diagnosis.get("nature") and diagnosis.get("cause") else (
        False if done else None)
    data["plan_recorded"] = True if plan.get("planned_at") and plan.get("steps") else (False if done else None)
    if status == "closed":
        data["customer_confirmed"] = (data.get("confirmation") or {}).get("satisfied") is True
    else:
        data["customer_confirmed"] = None
    if stamps.get("rediagnosed_at"):
        data["fixed_first_time"] = False
    elif status == "closed":
        data["fixed_first_time"] = True
    else:
        data["fixed_first_time"] = None
    log = list(data.get("progress_log") or [])
    if status_change == "progress" and stamps.get("progress_at"):
        log.append({"at": stamps["progress_at"]})
    data["progress_log"] = log
    received = _at(stamps.get("received_at"))
    resolved = _at(stamps.get("resolved_at"))
    if received and resolved:
        if resolved - received <= timedelta(hours=24):
            data["max_progress_gap_hours"] = None
        else:
            points = sorted([received, resolved, *(a for a in (_at(e.get("at")) for e in log) if a)])
            points = [p for p in points if p <= resolved]
            gap = max((b - a for a, b in pairwise(points)), default=timedelta(0))
            data["max_progress_gap_hours"] = round(gap.total_seconds() / 3600, 2)
    else:
        data["max_progress_gap_hours"] = None
    data["escalated_when_stuck"] = None
    if received and config is not None:
        limit = limit_hours(config["priority_targets"]["resolution"].get(data.get("priority") or "p4", ""))
        end = resolved or now
        if (end - received).total_seconds() / 3600 > limit / 2:
            data["escalated_when_stuck"] = bool(stamps.get("escalated_at") and data.get("escalation"))
    if data != record.data:
        record.data = data


def mark_repeat(session, record, config: dict[str, Any]) -> None:
    """Mark the earlier ticket of the same customer and serial number within the window."""
    serial = ((record.data or {}).get("product") or {}).get("serial_no")
    phone = ((record.data or {}).get("customer") or {}).get("phone")
    if not serial:
        return
    since = record.occurred_at - timedelta(days=config["repeat_contact_days"])
    stmt = (select(Record).where(Record.kind == TICKET, Record.id != record.id, Record.deleted_at.is_(None),
                                 Record.occurred_at >= since, Record.occurred_at <= record.occurred_at,
                                 Record.data["product"]["serial_no"].as_string() == serial)
            .order_by(Record.occurred_at.desc()).limit(1))
    if phone:
        stmt = stmt.where(Record.data["customer"]["phone"].as_string() == phone)
    earlier = session.scalar(stmt)
    if earlier is not None and (earlier.data or {}).get("repeat_contact") is not True:
        earlier.data = {**earlier.data, "repeat_contact": True}


def derive_review(session, record) -> None:
    data = dict(record.data or {})
    try:
        day = datetime.fromisoformat(str(data.get("date"))).date()
    except ValueError:
        return
    zone = schedule_zone(session)
    end = datetime.combine(day + timedelta(days=1), time(0), zone)
    listed = {str(i) for i in data.get("open_ticket_ids") or []}
    stmt = select(Record.id).where(Record.kind == TICKET, Record.deleted_at.is_(None),
                                   Record.status.in_(OPEN_TICKET_STATUSES), Record.occurred_at < end)
    if record.site_id is not None:
        stmt = stmt.where(Record.site_id == record.site_id)
    unlisted = sorted(str(i) for i in session.scalars(stmt) if str(i) not in listed)
    data["unlisted_open_tickets"] = len(unlisted)
    data["unlisted_ticket_ids"] = unlisted[:100]
    if data != record.data:
        record.data = data


def on_created(session, record) -> None:
    if record.kind == TICKET:
        config = configuration(session)
        derive_ticket(record, config, record.occurred_at)
        mark_repeat(session, record, config)
    elif record.kind == REVIEW:
        derive_review(session, record)


def on_changed(session, record, changes) -> None:
    if record.kind == TICKET:
        progress = "progress" if "timestamps.progress_at" in changes else None
        derive_ticket(record, configuration(session), utcnow(), progress)
    elif record.kind == REVIEW:
        derive_review(session, record)


def wants(session, kind) -> bool:
    return kind in _KINDS
