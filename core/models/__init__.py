"""All servq tables. Import from here so every model is registered on ``Base``."""

from servq.core.models.access import Membership, Tenant, TenantPlugin, Token, User
from servq.core.models.audit import AuditEvent
from servq.core.models.calendars import TenantCalendar
from servq.core.models.calibration import CalibrationReview, CalibrationSession
from servq.core.models.clocks import Clock
from servq.core.models.disputes import Dispute, EvaluationOverride
from servq.core.models.exports import TenantExport
from servq.core.models.kb import KbArticle, KbArticleVersion, KbLink
from servq.core.models.kpis import KpiDay, KpiDirtyDay, KpiState
from servq.core.models.ledger import LedgerEntry, LedgerFlag, LedgerRules
from servq.core.models.notify import OutboxEvent, Webhook, WebhookDelivery
from servq.core.models.quality import Action, Evaluation, StandardVersion
from servq.core.models.records import Record
from servq.core.models.reports import ReportRun
from servq.core.models.reference import Site, Staff
from servq.core.models.rescores import StandardRescore
from servq.core.models.schedules import Schedule
from servq.core.models.settings import TenantSettings
from servq.core.models.surveys import (Survey, SurveyAnswer, SurveyDimensionScore, SurveyInstrument,
                                 SurveyInvitation, SurveyResponse, SurveyRollup, SurveyTrigger)

__all__ = [
    "TenantSettings",
    "Action",
    "CalibrationReview",
    "CalibrationSession",
    "Clock",
    "Dispute",
    "EvaluationOverride",
    "Evaluation",
    "StandardRescore",
    "StandardVersion",
    "AuditEvent",
    "KbArticle",
    "KbArticleVersion",
    "KbLink",
    "KpiDay",
    "KpiDirtyDay",
    "KpiState",
    "LedgerEntry",
    "LedgerFlag",
    "LedgerRules",
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
