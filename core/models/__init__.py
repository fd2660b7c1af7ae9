"""All servq tables. Import from here so every model is registered on ``Base``."""

from core.models.access import Membership, Tenant, TenantPlugin, Token, User
from core.models.audit import AuditEvent
from core.models.calendars import TenantCalendar
from core.models.clocks import Clock
from core.models.exports import TenantExport
from core.models.kpis import KpiDay, KpiDirtyDay, KpiState
from core.models.notify import OutboxEvent, Webhook, WebhookDelivery
from core.models.quality import Action, Evaluation, StandardVersion
from core.models.records import Record
from core.models.reports import ReportRun
from core.models.reference import Site, Staff
from core.models.rescores import StandardRescore
from core.models.schedules import Schedule
from core.models.surveys import (Survey, SurveyAnswer, SurveyDimensionScore, SurveyInstrument,
                                 SurveyInvitation, SurveyResponse, SurveyRollup, SurveyTrigger)

__all__ = [
    "Action",
    "Clock",
    "Evaluation",
    "StandardRescore",
    "StandardVersion",
    "AuditEvent",
    "KpiDay",
    "KpiDirtyDay",
    "KpiState",
    "Membership",
    "OutboxEvent",
    "Record",
    "ReportRun",
    "Schedule",
    "Site",
    "Staff",
    "Survey",
    "SurveyAnswer",
    "SurveyDimensionScore",
    "SurveyInstrument",
    "SurveyInvitation",
    "SurveyResponse",
    "SurveyRollup",
    "SurveyTrigger",
    "Tenant",
    "TenantCalendar",
    "TenantExport",
    "TenantPlugin",
    "Token",
    "User",
    "Webhook",
    "WebhookDelivery",
]
