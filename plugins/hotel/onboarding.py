"""What a hotel gets when it is onboarded with the plugin enabled (idempotent).

* Standards adopted; the configured ``refill_interval_minutes`` and ``office_ready_by``
  become overrides of ``hotel.meeting_service`` / ``hotel.office_service`` (a new version
  only when they differ from the standard in force).
* Per configured meeting room (``meeting_rooms``) and active site: schedules of kind
  ``hotel.housekeeping_task`` — tea sets washed and disinfected weekly (action on miss),
  deep clean weekly, cleaning daily (seed 000 7篇·篇一 §1.6-§1.7).
* Per site, a monthly follow-up visit to the leaders (定期对省局领导回访, §1.9/§2.7; "regularly"
  = monthly [P]), met by a ``hotel.housekeeping_task`` with ``task = follow_up_visit``.
* Daily appraisal records (逐日考核记录, seed 000 6篇 §4): each staff member linked to a
  manager user files ``daily_inspections_per_manager`` inspections (as inspector) every
  working day, a per-staff quota schedule [P: 3].
* The guest comment form (宾客意见表): a survey of ``guest_comment_survey`` triggered by a
  check-out inspection entering clear, charged or waived; and the internal back-office
  survey (后台部门应证求前台部门意见) and host-unit survey (订餐宾客和接待单位), created once.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from sqlalchemy import select

from servq import (
    PluginConfigError,
    Site,
    StandardVersion,
    Survey,
    adopt_visible,
    change_standard,
    create_schedule,
    create_survey,
    enabled_plugin_ids,
    find_instrument,
    get_plugins,
    merge_patch,
    schedule_zone,
    utcnow,
)
from servq.plugins.hotel.settings import PLUGIN, plugin_configuration

TASK = "hotel.housekeeping_task"
ESCALATE_TO = ["manager"]
#: (task, rrule, title, action on miss)
MEETING_ROOM_TASKS = (
    ("teaware_disinfection", "FREQ=WEEKLY", "Tea sets washed and disinfected 茶具大洗、消毒", True),
    ("deep_clean", "FREQ=WEEKLY", "Meeting room deep clean 会议室大扫除", False),
    ("daily_clean", "FREQ=DAILY", "Meeting room daily cleaning 会议室每天保洁", False),
)
GUEST_COMMENT = {"en": "Guest comment form", "zh": "宾客意见表"}
INTERNAL = {"en": "Back-office service (rated by the front office)", "zh": "后台部门服务(前台部门评价)"}
HOST_UNIT = {"en": "Host units and banquet bookers", "zh": "订餐宾客和接待单位意见"}
CHECKOUT_DONE = ("clear", "charged", "waived")


def onboard(session, tenant, manifest: Mapping[str, Any] | None = None) -> None:
    config = plugin_configuration(session)
    adopt_visible(session)
    _override(session, "hotel.meeting_service", "refill_every_15_min",
              {"rule": {"max": config["refill_interval_minutes"]}},
              lambda item: item["rule"].get("max") == config["refill_interval_minutes"])
    _override(session, "hotel.office_service", "ready_by_0830",
              {"rule": {"due_time": config["office_ready_by"]}},
              lambda item: item["rule"].get("due_time") == config["office_ready_by"])
    _override(session, "hotel.checkout_inspection", "inspected_in_time",
              {"rule": {"limit": f"{config['checkout_inspection_minutes']}m"}},
              lambda item: item["rule"].get("limit") == f"{config['checkout_inspection_minutes']}m")
    start = _first_of_month(session)
    for site in session.scalars(select(Site).where(Site.active.is_(True)).order_by(Site.code)):
        for room in config["meeting_rooms"]:
            for task, rrule, title, action in MEETING_ROOM_TASKS:
                create_schedule(session, key=f"hotel.{task}.{site.id}.{room}", title=f"{title} ({room})",
                                kind=TASK, match={"task": task, "area": room}, site_id=site.id,
                                rrule=rrule, dtstart=start, action_on_miss=action, escalate_to=ESCALATE_TO)
        create_schedule(session, key=f"hotel.follow_up_visit.{site.id}",
                        title=f"Follow-up visit to the leaders 定期回访 ({site.code})", kind=TASK,
                        match={"task": "follow_up_visit"}, site_id=site.id, rrule="FREQ=MONTHLY",
                        dtstart=start, escalate_to=ESCALATE_TO)
    if config["daily_inspections_per_manager"]:
        create_schedule(session, key="hotel.daily_appraisal", title="Daily appraisal inspections 逐日考核记录",
                        kind="inspection", rrule="FREQ=DAILY", dtstart=start, per="staff",
                        staff_selector={"role": "manager"}, staff_field="data.inspector_id",
                        min_count=config["daily_inspections_per_manager"], working_days=True,
                        escalate_to=["admin"])
    surveys(session, tenant, config)


def _override(session, code: str, item_code: str, patch: dict, current) -> None:
    row = session.scalar(select(StandardVersion).where(StandardVersion.code == code)
                         .order_by(StandardVersion.version.desc()).limit(1))
    if row is None:
        return
    item = next((i for i in row.document.get("items", []) if i.get("code") == item_code), None)
    if item is None or current(item):
        return
    change_standard(session, code, overrides=merge_patch(dict(row.overrides or {}), {"items": {item_code: patch}}),
                    note=f"hotel: configuration ({item_code})")


def _first_of_month(session) -> datetime:
    local = utcnow().astimezone(schedule_zone(session))
    return local.replace(day=1, hour=0, minute=0, second=0, microsecond=0)


def surveys(session, tenant, config: dict[str, Any]) -> dict[str, Survey]:
    """The three surveys of the plugin, created once (found again by their English title)."""
    language = "zh" if (tenant.locale or "").lower().startswith("zh") else "en"
    kinds = get_plugins().kinds_for(enabled_plugin_ids(session))
    out = {}
    for key, title, code, triggers in (
            ("guest_comment", GUEST_COMMENT, config["guest_comment_survey"],
             [{"kind": "hotel.checkout_inspection", "status": s} for s in CHECKOUT_DONE]),
            ("internal", INTERNAL, "csat", None), ("host_unit", HOST_UNIT, "csat", None)):
        existing = next((s for s in session.scalars(select(Survey).order_by(Survey.created_at, Survey.id))
                         if (s.title or {}).get("en") == title["en"]), None)
        if existing is not None:
            out[key] = existing
            continue
        found = find_instrument(session, code)
        if found is None:
            raise PluginConfigError(PLUGIN, {"guest_comment_survey": [
                f"No instrument {code!r}: use a built-in one (csat, nps, servqual) or create it first."]})
        document, version = found
        out[key] = create_survey(session, document, version, title=title, language=language,
                                 link_lifetime_days=14, active=True, triggers=triggers, kinds=kinds)
    return out
