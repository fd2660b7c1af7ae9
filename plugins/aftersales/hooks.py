"""What the after-sales plugin does when its records are created or change.

Tickets: the values that depend on the workflow are worked out from the record's status
and stamps on every write (before it is scored): ``fixed_first_time`` (false once
re-diagnosed, true when closed without), ``diagnosis_recorded``, ``plan_recorded``,
``customer_confirmed``, ``escalated_when_stuck``, ``progress_log`` and
``max_progress_gap_hours``. A new ticket about a serial number the same customer reported
within ``repeat_contact_days`` marks the earlier ticket ``repeat_contact``.

Knowledge base (core's, through the plugin surface): ``kb_articles`` names articles by
code or id; each newly named one must be a published article of the tenant, else the
write is a 422 naming ``data.kb_articles.<n>`` and nothing is changed; names are stored
as codes. When the ticket is resolved (and on any later write while it is resolved or
closed) each named article not linked yet becomes a link of the record (core's
``kb-links``: pinned version, counted, audited), so core's KB stats count it.
``kb_linked`` is derived from the record's links (true when it has one, n.a. otherwise),
whoever made them: a link or unlink through ``/records/<id>/kb-links`` fires
``record_changed`` and the ticket is scored again. A new ticket whose product and fault
description fit published articles emits ``aftersales.kb_suggested`` to the agents with
the best three (``GET /records/<id>/kb-suggestions`` gives them all).

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

from servq import (KbArticle, KbLink, KbRefused, Record, RecordInvalid, emit, get_plugins,
                   kb_find_articles, kb_link, kb_suggest, plugin_settings, schedule_zone, utcnow)
from servq.plugins.aftersales.config import AftersalesConfig
from servq.plugins.aftersales.kinds import OPEN_TICKET_STATUSES

TICKET = "aftersales.ticket"
REVIEW = "aftersales.daily_review"
PLUGIN = "aftersales"
_KINDS = frozenset({TICKET, REVIEW})
#: Statuses in which the named articles are linked to the ticket.
LINKING = ("resolved", "closed")
SUGGESTED = "aftersales.kb_suggested"
SUGGESTIONS = 3


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


def _refuse(problems: dict[int, str]) -> None:
    raise RecordInvalid({"data": {"kb_articles": {i: [m] for i, m in sorted(problems.items())}}},
                        "data.kb_articles: " + "; ".join(m for _, m in sorted(problems.items())))


def sync_kb(session, record, changes: dict | None, actor_id, now: datetime) -> None:
    """Check the newly named articles of ``kb_articles``, store them as codes, link them
    once the ticket is resolved, derive ``kb_linked`` from the links (see the module
    docstring). ``changes`` is ``None`` for a new ticket. The links are read (one query)
    only when they may have changed: a link or unlink through core, a resolved or closed
    ticket, articles newly named; one more query when a name is not linked yet."""
    data = dict(record.data or {})
    names = [str(n) for n in data.get("kb_articles") or []]
    old = ((changes or {}).get("data") or [None, None])[0]
    renamed = changes is None or ("data" in changes and (old or {}).get("kb_articles") != data.get("kb_articles"))
    linking = record.status in LINKING and record.deleted_at is None
    if changes is not None and "kb_links" not in changes and not linking and not (names and renamed):
        # Nothing can have linked or unlinked: kb_linked keeps its value (a client's
        # replacement of data does not change it).
        previous = (old if "data" in changes else data) or {}
        if data.get("kb_linked") != previous.get("kb_linked"):
            record.data = {**data, "kb_linked": previous.get("kb_linked")}
        return
    linked: dict[str, str] = {}
    if changes is not None:
        linked = {str(a): c for a, c in session.execute(
            select(KbLink.article_id, KbArticle.code).join(KbArticle, KbArticle.id == KbLink.article_id)
            .where(KbLink.record_id == record.id))}
    codes = set(linked.values())
    pending = [(i, n) for i, n in enumerate(names) if n not in codes and n not in linked]
    stored = list(dict.fromkeys(linked.get(n, n) for n in names))
    if pending and (renamed or linking):
        found = kb_find_articles(session, [n for _, n in pending])
        problems = {}
        for i, name in pending:
            article = found.get(name)
            if article is None:
                problems[i] = f"No knowledge-base article with code or id {name!r} in this tenant."
            elif article.status != "published":
                problems[i] = (f"Article {article.code!r} is {article.status}: only a published article "
                               "is linked to a ticket.")
        if problems:
            _refuse(problems)
        by_id = {str(a.id): a.code for a in found.values()}
        stored = list(dict.fromkeys(by_id.get(n, n) for n in names))
        if linking:
            for i, name in pending:
                article = found[name]
                if str(article.id) in linked:
                    continue
                try:
                    kb_link(session, record, article, actor_id=actor_id, now=now)
                except KbRefused as refused:
                    _refuse({i: refused.message})
                linked[str(article.id)] = article.code
    data["kb_articles"] = stored
    data["kb_linked"] = True if linked else None
    if data != record.data:
        record.data = data


def suggest_articles(session, record) -> None:
    """Tell the agents the best published articles for a new ticket (none: no event)."""
    kind = get_plugins().kinds.get(TICKET)
    found = kb_suggest(session, record, kind, limit=SUGGESTIONS)
    if found:
        emit(session, SUGGESTED, {"record_id": record.id, "articles": found,
                                  "suggestions": f"/api/v1/records/{record.id}/kb-suggestions"},
             roles=("agent",), dedupe_key=f"{SUGGESTED}:{record.id}")


def on_created(session, record, actor_id=None) -> None:
    if record.kind == TICKET:
        config = configuration(session)
        derive_ticket(record, config, record.occurred_at)
        sync_kb(session, record, None, actor_id, record.occurred_at)
        mark_repeat(session, record, config)
        suggest_articles(session, record)
    elif record.kind == REVIEW:
        derive_review(session, record)


def on_changed(session, record, changes, actor_id=None) -> None:
    if record.kind == TICKET:
        progress = "progress" if "timestamps.progress_at" in changes else None
        now = utcnow()
        derive_ticket(record, configuration(session), now, progress)
        # Links made by a transition carry its instant (a demo replaying history passes
        # the past one); links made by a later edit, the present.
        stamps = record.timestamps or {}
        moved = {"resolved": "resolved_at", "closed": "closed_at"}.get(record.status)
        at = _at(stamps.get(moved)) if moved and "status" in changes else None
        sync_kb(session, record, changes, actor_id, at or now)
    elif record.kind == REVIEW:
        derive_review(session, record)


def wants(session, kind) -> bool:
    return kind in _KINDS
