"""What a courier company gets when it is onboarded with the plugin enabled.

:func:`onboard` runs on every onboarding (``tenant_onboarded``) and is idempotent:

* **Standards** adopted as the tenant's version 1, then kept in step with the
  configuration: the service ``time_limits`` (the ``time_limit_<service>`` items of
  ``courier.delivery``), ``notice_lead_minutes`` and ``appointment_window_minutes`` (the
  ``courier.window`` items of delivery and pickup). A change is a new version (an
  override), made only when something differs.
* **The manager service survey** (``courier_manager_service``, S 第二章 第二条: couriers rate
  their station manager on the five aims 放心/舒心/称心/安心/顺心), created once.
* **Monthly vehicle checks** per station [P]: a schedule of kind ``courier.vehicle_check``.
* **The daily appearance line-up** (晨检 [P]) per station: a schedule met by an
  ``inspection`` against ``courier.appearance`` at the station each day.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Mapping

from sqlalchemy import select

from servq import (Site, StandardVersion, Survey, adopt_visible, change_standard, create_schedule,
                   create_survey, merge_patch, schedule_zone, utcnow)
from servq.plugins.courier.conduct import configuration
from servq.plugins.courier.kinds import SERVICES
from servq.plugins.courier.survey import MANAGER_SURVEY_TITLE, manager_instrument

DELIVERY_STANDARD = "courier.delivery"
PICKUP_STANDARD = "courier.pickup"
WINDOW_ITEM = "appointment_kept_or_notified"


def onboard(session, tenant, manifest: Mapping[str, Any] | None = None) -> None:
    config = configuration(session)
    adopt_visible(session)
    patch = {"items": {f"time_limit_{service}": {"rule": {"limit": config["time_limits"][service]}}
                       for service in SERVICES if service in config["time_limits"]}}
    window = {"rule": {"lead_minutes": config["notice_lead_minutes"],
                       "window_minutes": config["appointment_window_minutes"]}}
    patch["items"][WINDOW_ITEM] = window
    _follow(session, DELIVERY_STANDARD, patch)
    _follow(session, PICKUP_STANDARD, {"items": {WINDOW_ITEM: window}})
    manager_survey(session, tenant)
    start = _first_of_month(session)
    for site in session.scalars(select(Site).where(Site.active.is_(True)).order_by(Site.code)):
        create_schedule(session, key=f"courier.vehicle_check.{site.id}",
                        title=f"Monthly vehicle checks 车辆月检 ({site.code})", kind="courier.vehicle_check",
                        site_id=site.id, rrule="FREQ=MONTHLY", dtstart=start, escalate_to=["manager"])
        create_schedule(session, key=f"courier.lineup.{site.id}",
                        title=f"Daily appearance line-up 晨检 ({site.code})", kind="inspection",
                        match={"standard": "courier.appearance"}, site_id=site.id, rrule="FREQ=DAILY",
                        dtstart=start, escalate_to=["manager"])


def _first_of_month(session) -> datetime:
    local = utcnow().astimezone(schedule_zone(session))
    return local.replace(day=1, hour=0, minute=0, second=0, microsecond=0)


def _follow(session, code: str, patch: dict) -> None:
    """Override ``code`` with ``patch`` unless its version in force already says so."""
    row = session.scalar(select(StandardVersion).where(StandardVersion.code == code)
                         .order_by(StandardVersion.version.desc()).limit(1))
    if row is None:
        return
    items = {item.get("code"): item for item in row.document.get("items", [])}
    wanted = {}
    for code_, change in patch["items"].items():
        item = items.get(code_)
        if item is None:  # the tenant removed the item
            continue
        rule = item.get("rule") or {}
        if any(rule.get(key) != value for key, value in change["rule"].items()):
            wanted[code_] = change
    if wanted:
        change_standard(session, code, overrides=merge_patch(dict(row.overrides or {}), {"items": wanted}),
                        note="courier: configuration")


def manager_survey(session, tenant) -> Survey:
    """The internal manager-service survey, created once."""
    document, version = manager_instrument()
    for survey in session.scalars(select(Survey).order_by(Survey.created_at, Survey.id)):
        if (survey.title or {}).get("en") == MANAGER_SURVEY_TITLE["en"]:
            return survey
    language = "zh" if (tenant.locale or "").lower().startswith("zh") else "en"
    return create_survey(session, document, version, title=MANAGER_SURVEY_TITLE, form="single",
                         importance="none", language=language, link_lifetime_days=30, active=True)
