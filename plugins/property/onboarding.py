"""What a property manager gets when it is onboarded with the plugin enabled.

:func:`onboard` runs on every onboarding of such a tenant (the ``tenant_onboarded``
hook, inside the onboarding transaction) and is idempotent: a second run finds
everything in place and changes nothing.

* **Standards.** The plugin's standards (and core's) are adopted as the tenant's
  version 1 at once (core would adopt them on first use anyway), and the item
  ``facility_fault_on_site_in_time`` of ``property.work_order`` follows the configured
  ``facility_fault_categories`` (an override, i.e. a new version, only when they differ).
* **Recurring obligations** of every active site (seed 002): fire equipment patrolled
  monthly and tested yearly, water tanks cleaned twice a year, drainage checked monthly,
  septic tanks emptied yearly. Each is a core schedule of kind
  ``property.facility_check`` whose ``match`` names the facility and the check, so only
  such a check at the site meets a period; misses notify the managers, and a missed fire
  equipment patrol or test also opens a corrective action.
* **The owner satisfaction survey**: the survey of the configured instrument
  (``satisfaction_survey``) is created once, and every site gets a schedule "a survey
  round in every half year starting in a ``survey_months`` month". Core's schedules are
  met by records and a survey response is not one, so a round is filed as an
  ``observation`` titled :data:`SURVEY_ROUND_TITLE` at the estate (the schedule's
  ``match``); see plugins/property/README.md.

Periods start on the first day of the month of the first onboarding, in the tenant's
calendar time zone.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, Mapping

from sqlalchemy import select

from servq import (PluginConfigError, Site, StandardVersion, Survey, adopt_visible,
                   change_standard, create_schedule, create_survey, find_instrument, merge_patch,
                   plugin_settings, schedule_zone, update_schedule, utcnow)
from servq.plugins.property.config import PropertyConfig

PLUGIN = "property"
FACILITY_CHECK = "property.facility_check"
WORK_ORDER_STANDARD = "property.work_order"
FAULT_ITEM = "facility_fault_on_site_in_time"
#: The title of the ``observation`` that files a survey round at an estate.
SURVEY_ROUND_TITLE = "Owner satisfaction survey"
SURVEY_TITLE = {"en": "Owner satisfaction survey", "zh": "业主满意度调查"}
#: Who hears of a missed period.
ESCALATE_TO = ["manager"]


@dataclass(frozen=True)
class Obligation:
    """One recurring facility check of every site."""

    facility: str
    check: str
    rrule: str
    title: str
    action_on_miss: bool = False

    def key(self, site: Site) -> str:
        return f"property.{self.facility}.{self.check}.{site.id}"

    @property
    def match(self) -> dict[str, str]:
        return {"facility": self.facility, "check": self.check}


#: The seed's recurring obligations (物业管理服务标准, 二、共用设施设备管理服务).
OBLIGATIONS = (
    Obligation("fire_equipment", "patrol", "FREQ=MONTHLY", "Fire equipment patrol 消防设施巡查",
               action_on_miss=True),
    Obligation("fire_equipment", "test", "FREQ=YEARLY", "Fire equipment full test 消防设施全面检测",
               action_on_miss=True),
    Obligation("water_tank", "cleaning", "FREQ=MONTHLY;INTERVAL=6", "Water tank cleaning 水池清洗"),
    Obligation("drainage", "inspection", "FREQ=MONTHLY", "Drainage check 排水管道检查"),
    Obligation("septic_tank", "emptying", "FREQ=YEARLY", "Septic tank emptying 化粪池清掏"),
)


def onboard(session, tenant, manifest: Mapping[str, Any] | None = None) -> None:
    """Adopt the standards, apply the configuration and create the recurring obligations
    and the satisfaction survey of ``tenant`` (the session's tenant). Idempotent."""
    config = plugin_configuration(session)
    adopt_visible(session)
    _fault_categories(session, config["facility_fault_categories"])
    satisfaction_survey(session, tenant, config["satisfaction_survey"])
    start = _first_of_month(session)
    for site in session.scalars(select(Site).where(Site.active.is_(True)).order_by(Site.code)):
        for obligation in OBLIGATIONS:
            create_schedule(session, key=obligation.key(site),
                            title=f"{obligation.title} ({site.code})", kind=FACILITY_CHECK,
                            match=obligation.match, site_id=site.id, rrule=obligation.rrule,
                            dtstart=start, action_on_miss=obligation.action_on_miss,
                            escalate_to=ESCALATE_TO)
        _survey_schedule(session, site, config["survey_months"], start)


def plugin_configuration(session) -> dict[str, Any]:
    """The tenant's stored configuration of the plugin, defaults filled in."""
    return PropertyConfig().load(plugin_settings(session, PLUGIN))


def survey_rrule(months: list[int]) -> str:
    """The recurrence of the survey obligation: the first day of every survey month."""
    return f"FREQ=YEARLY;BYMONTH={','.join(str(m) for m in sorted(months))};BYMONTHDAY=1"


def survey_key(site: Site) -> str:
    return f"property.owner_survey.{site.id}"


def _first_of_month(session) -> datetime:
    local = utcnow().astimezone(schedule_zone(session))
    return local.replace(day=1, hour=0, minute=0, second=0, microsecond=0)


def _survey_schedule(session, site: Site, months: list[int], start: datetime) -> None:
    """The half-yearly survey round at ``site``; follows a change of ``survey_months``."""
    rrule = survey_rrule(months)
    schedule = create_schedule(session, key=survey_key(site),
                               title=f"Owner satisfaction survey 业主满意度调查 ({site.code})",
                               kind="observation", match={"title": SURVEY_ROUND_TITLE},
                               site_id=site.id, rrule=rrule, dtstart=start,
                               escalate_to=ESCALATE_TO)
    if schedule.rrule != rrule:
        update_schedule(session, schedule, {"rrule": rrule})


def _fault_categories(session, categories: list[str]) -> None:
    """Make the in-force ``property.work_order`` time the configured facility faults."""
    row = session.scalar(select(StandardVersion).where(StandardVersion.code == WORK_ORDER_STANDARD)
                         .order_by(StandardVersion.version.desc()).limit(1))
    if row is None:
        return
    item = next((i for i in row.document.get("items", []) if i.get("code") == FAULT_ITEM), None)
    if item is None:  # the tenant removed the item: nothing to keep in step
        return
    when = dict((item.get("rule") or {}).get("when") or {})
    if sorted(when.get("category") or []) == sorted(categories):
        return
    patch = {"items": {FAULT_ITEM: {"rule": {"when": {"category": list(categories)}}}}}
    change_standard(session, WORK_ORDER_STANDARD,
                    overrides=merge_patch(dict(row.overrides or {}), patch),
                    note="property: facility_fault_categories")


def satisfaction_survey(session, tenant, code: str) -> Survey:
    """The owner satisfaction survey of instrument ``code``, created once."""
    for survey in session.scalars(select(Survey).where(Survey.instrument_code == code)
                                  .order_by(Survey.created_at, Survey.id)):
        if (survey.title or {}).get("en") == SURVEY_TITLE["en"]:
            return survey
    found = find_instrument(session, code)
    if found is None:
        raise PluginConfigError(PLUGIN, {"satisfaction_survey": [
            f"No instrument {code!r}: use a built-in one (servqual, servqual_1991, csat, nps) "
            "or create it first."]})
    document, version = found
    language = "zh" if (tenant.locale or "").lower().startswith("zh") else "en"
    return create_survey(session, document, version, title=SURVEY_TITLE, importance="none",
                         language=language, link_lifetime_days=30, active=True)
