"""What an after-sales tenant gets when it is onboarded with the plugin enabled.

:func:`onboard` runs on every onboarding (the ``tenant_onboarded`` hook) and is idempotent:

* **Standards** adopted as the tenant's version 1; the configured ``priority_targets`` and
  speech band are written into ``aftersales.ticket`` and ``aftersales.call_qa`` (an
  override, i.e. a new version, only when they differ from the version in force).
* **Daily review** per active site (service centre): an ``aftersales.daily_review`` every
  day, ``working_days`` on, so weekends and the calendar's holidays are not obligations.
* **Call review quota**: at least ``reviews_per_agent`` manual call reviews (inspections
  against ``aftersales.call_qa``) per agent per month, counted on the reviewed agent
  (the inspection's ``staff_id``, taken from the call).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from sqlalchemy import select

from servq import (
    Site,
    StandardVersion,
    adopt_visible,
    change_standard,
    create_schedule,
    merge_patch,
    schedule_zone,
    update_schedule,
    utcnow,
)
from servq.plugins.aftersales.hooks import configuration

TICKET_STANDARD = "aftersales.ticket"
CALL_STANDARD = "aftersales.call_qa"
ESCALATE_TO = ["manager"]


def onboard(session, tenant, manifest: Mapping[str, Any] | None = None) -> None:
    config = configuration(session)
    adopt_visible(session)
    _targets(session, config)
    start = _first_of_month(session)
    for site in session.scalars(select(Site).where(Site.active.is_(True)).order_by(Site.code)):
        create_schedule(session, key=f"aftersales.daily_review.{site.id}",
                        title=f"Daily review of open tickets 每日碰头 ({site.code})",
                        kind="aftersales.daily_review", site_id=site.id, rrule="FREQ=DAILY",
                        dtstart=start, working_days=True, grace_seconds=6 * 3600, escalate_to=ESCALATE_TO)
    quota = config["reviews_per_agent"]
    if quota:
        schedule = create_schedule(
            session, key="aftersales.call_reviews", title="Manual call reviews per agent 座席人工质检",
            kind="inspection", standard_code=CALL_STANDARD, rrule="FREQ=MONTHLY", dtstart=start,
            per="staff", staff_selector={"role": "agent"}, min_count=quota, escalate_to=ESCALATE_TO)
        if schedule.min_count != quota:
            update_schedule(session, schedule, {"min_count": quota})


def _latest(session, code: str):
    return session.scalar(select(StandardVersion).where(StandardVersion.code == code)
                          .order_by(StandardVersion.version.desc()).limit(1))


def _patch_items(session, code: str, wanted: dict[str, dict[str, Any]], note: str) -> None:
    """Override the rule parameters of items of ``code`` that differ from ``wanted``."""
    row = _latest(session, code)
    if row is None:
        return
    items = {i.get("code"): i for i in row.document.get("items", [])}
    patch: dict[str, Any] = {}
    for item_code, params in wanted.items():
        rule = (items.get(item_code) or {}).get("rule")
        if rule is None:  # the tenant removed the item
            continue
        if any(rule.get(k) != v for k, v in params.items()):
            patch[item_code] = {"rule": params}
    if patch:
        change_standard(session, code, overrides=merge_patch(dict(row.overrides or {}), {"items": patch}),
                        note=note)


def _targets(session, config: dict[str, Any]) -> None:
    targets = config["priority_targets"]
    wanted = {f"{p}_acknowledged": {"limit": limit} for p, limit in targets["response"].items()}
    wanted.update({f"{p}_resolved": {"limit": limit} for p, limit in targets["resolution"].items()})
    _patch_items(session, TICKET_STANDARD, wanted, "aftersales: priority_targets")
    _patch_items(session, CALL_STANDARD, {"speech_rate_tone": {"min": config["speech_rate_min"],
                                                               "max": config["speech_rate_max"]}},
                 "aftersales: speech rate band")


def _first_of_month(session) -> datetime:
    local = utcnow().astimezone(schedule_zone(session))
    return local.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
