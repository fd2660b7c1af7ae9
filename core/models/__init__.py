"""All servq tables. Import from here so every model is registered on ``Base``."""

from core.models.access import Membership, Tenant, TenantPlugin, Token, User
from core.models.audit import AuditEvent
from core.models.clocks import Clock
from core.models.exports import TenantExport
from core.models.quality import Action, Evaluation, StandardVersion
from core.models.records import Record
from core.models.reference import Site, Staff

__all__ = [
    "Action",
    "Clock",
    "Evaluation",
    "StandardVersion",
    "AuditEvent",
    "Membership",
    "Record",
    "Site",
    "Staff",
    "Tenant",
    "TenantExport",
    "TenantPlugin",
    "Token",
    "User",
]
