"""The tenant's ledger rules: one JSON document per tenant, validated here.

The seed's six rules (S ``000 公司质量、效率和服务管理制度范本 §六``), each optional (a rule
left out posts nothing)::

    {"money": false, "currency": null, "flag_threshold": 3,
     "failed_item": {"points": 2, "amount": null, "critical_multiplier": 2},
     "market_complaint": {"points": 5, "supervisor_points": 2, "amount": null, "supervisor_amount": null},
     "internal_complaint": {"points": 3, "amount": null},
     "suggestion": {"points": 2, "amount": null, "large_multiplier": 2, "tags": ["suggestion", "proactive"]},
     "supervisors": {"<site id>": "<staff id>"}}

Amounts are refused unless ``money`` is true (then ``currency`` is required).
"""

from __future__ import annotations

import json
from typing import Any

from marshmallow import Schema, ValidationError, fields, validate, validates_schema
from sqlalchemy import select

from servq.core.auth.facts import tenant_fact
from servq.core.db.state import TENANT, Slot
from servq.core.models import LedgerRules, Staff, Tenant

POINTS = dict(allow_nan=False, validate=validate.Range(min=0, max=1_000_000))


def _points(**kw):
    return fields.Float(**POINTS, **kw)


class FailedItemRule(Schema):
    points = _points(required=True, metadata={"description": "Penalty per failed item"})
    amount = _points(load_default=None, allow_none=True)
    critical_multiplier = fields.Float(load_default=2, allow_nan=False, validate=validate.Range(min=1, max=100))


class MarketComplaintRule(Schema):
    points = _points(required=True, metadata={"description": "Penalty of the responsible person"})
    amount = _points(load_default=None, allow_none=True)
    supervisor_points = _points(load_default=0)
    supervisor_amount = _points(load_default=None, allow_none=True)


class InternalComplaintRule(Schema):
    points = _points(required=True)
    amount = _points(load_default=None, allow_none=True)


class SuggestionRule(Schema):
    points = _points(required=True, metadata={"description": "Reward per suggestion or problem found"})
    amount = _points(load_default=None, allow_none=True)
    large_multiplier = fields.Float(load_default=2, allow_nan=False, validate=validate.Range(min=1, max=100))
    tags = fields.List(fields.String(validate=validate.Length(min=1, max=50)),
                       load_default=lambda: ["suggestion", "proactive"], validate=validate.Length(min=1, max=20))


class RulesDocument(Schema):
    money = fields.Boolean(load_default=False, metadata={"description": "Amounts allowed (cash rewards and fines)"})
    currency = fields.String(load_default=None, allow_none=True, validate=validate.Regexp(
        r"^[A-Z]{3}$", error="An ISO 4217 currency code such as CNY, EUR or USD."))
    flag_threshold = fields.Integer(load_default=3, validate=validate.Range(min=2, max=100))
    failed_item = fields.Nested(FailedItemRule, load_default=None, allow_none=True)
    market_complaint = fields.Nested(MarketComplaintRule, load_default=None, allow_none=True)
    internal_complaint = fields.Nested(InternalComplaintRule, load_default=None, allow_none=True)
    suggestion = fields.Nested(SuggestionRule, load_default=None, allow_none=True)
    supervisors = fields.Dict(keys=fields.UUID(), values=fields.UUID(), load_default=dict,
                              metadata={"description": "Site id → the staff member who supervises it: "
                                                       "the market complaints' supervisor when the "
                                                       "responsible person has no reports_to"})

    @validates_schema
    def _money(self, data, **kwargs):
        if data.get("money"):
            if not data.get("currency"):
                raise ValidationError("Money is on: name the currency.", "currency")
            return
        errors = {}
        for rule in ("failed_item", "market_complaint", "internal_complaint", "suggestion"):
            for name in ("amount", "supervisor_amount"):
                if (data.get(rule) or {}).get(name) is not None:
                    errors.setdefault(rule, {})[name] = [
                        "Amounts need money turned on (\"money\": true and a currency); points otherwise."]
        if errors:
            raise ValidationError(errors)


def validate_rules(session, body: dict) -> dict[str, Any]:
    """The validated document (JSON-safe), or :class:`marshmallow.ValidationError`; the
    supervisors must be staff of the tenant."""
    data = RulesDocument().load(body)
    staff = {str(s) for s in data["supervisors"].values()}
    if staff:
        known = {str(s) for s in session.scalars(select(Staff.id).where(Staff.id.in_(data["supervisors"].values())))}
        unknown = sorted(staff - known)
        if unknown:
            raise ValidationError({"supervisors": [f"Not staff of this tenant: {', '.join(unknown)}."]})
    data["supervisors"] = {str(k): str(v) for k, v in data["supervisors"].items()}
    return data


#: (tenant id, rules document or None, time zone or None): kept for the session's life
#: with its tenant (a request, a job, an import). A request reads the document with its
#: token (the tenant fact below): no query of its own, none between the queued INSERTs
#: of an import's chunks.
_RULES: Slot[tuple] = Slot("servq.ledger.rules", TENANT, __name__)


def _rules_column(tenant_id):
    rules = LedgerRules.__table__
    return select(rules.c.document).where(rules.c.tenant_id == tenant_id).scalar_subquery()


tenant_fact("ledger_rules", _rules_column,
            "(SELECT lr.document FROM ledger_rules lr WHERE lr.tenant_id = %(tenant_id)s) AS ledger_rules",
            lambda session, tenant_id, document: session.state.set(
                _RULES, (tenant_id, _document(document), None)))


def _document(value) -> dict | None:
    if value is None or isinstance(value, dict):
        return value
    return json.loads(value)


def load_rules(session) -> LedgerRules | None:
    """The tenant's rules row, or ``None``."""
    return session.scalar(select(LedgerRules))


def rules_for(session) -> tuple[dict, str] | None:
    """``(document, time zone)`` of the tenant's rules, or ``None`` when it has none (the
    posting step's cheap check): read with the request's token, else one SELECT per
    session and tenant (a job, an import: an import started before a change posts by
    the rules it started with); the time zone only when there are rules."""
    cached = session.state.get(_RULES)
    if cached is None or cached[0] != session.tenant_id:
        row = session.execute(select(LedgerRules.document, Tenant.timezone)
                              .join(Tenant, Tenant.id == LedgerRules.tenant_id)).first()
        cached = (session.tenant_id, row[0], row[1] or "UTC") if row is not None else (session.tenant_id, None, None)
        session.state.set(_RULES, cached)
    if cached[1] is None:
        return None
    if cached[2] is None:
        zone = session.scalar(select(Tenant.timezone).where(Tenant.id == session.tenant_id)) or "UTC"
        cached = (cached[0], cached[1], zone)
        session.state.set(_RULES, cached)
    return cached[1], cached[2]


def forget_rules(session) -> None:
    """Drop the cached rules (after they changed in this transaction)."""
    session.state.pop(_RULES)
