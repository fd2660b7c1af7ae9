"""Invitations: single-use survey links, created by hand or by a trigger.

A link token reads ``sv_<tenant id hex>_<secret>``: like a bearer token (see
:mod:`core.auth.tokens`), the tenant part lets the public routes open a session scoped
to that tenant (ORM filter and row-level security) before anything else is known, and
only the SHA-256 of the whole token is stored.

Triggers: a survey may say "invite when a record of kind K enters status S" (or "when a
record of kind K is created"). :func:`invite_for_record` is called by
:mod:`core.surveys.plugin` from the ``record_created`` and ``record_changed`` hooks; it
reads the customer from the record's ``data`` (see :func:`customer_of`) and creates at
most one invitation per record and survey (a unique constraint guards the race).
"""

from __future__ import annotations

import logging
import re
import secrets
import uuid
from datetime import datetime, timedelta

from flask import current_app, has_app_context
from sqlalchemy import and_, func, select
from sqlalchemy.exc import IntegrityError

from servq.core.audit import apply_changes, audit, jsonable
from servq.core.auth.facts import tenant_fact
from servq.core.auth.tokens import hash_token
from servq.core.db import utcnow
from servq.core.db.state import TENANT, Slot
from servq.core.models import AuditEvent, Record, Survey, SurveyInvitation, SurveyTrigger
from servq.core.personal import READ_ACTION, mask_text
from servq.core.surveys.errors import SurveyConflict, SurveyInvalid
from servq.core.surveys.instruments import LANGUAGES

log = logging.getLogger(__name__)

PREFIX = "sv"
_LINK_RE = re.compile(r"sv_([0-9a-f]{32})_([A-Za-z0-9_-]{20,128})")
DEFAULT_LINK_URL = "/api/v1/public/surveys/{token}"
EVENT = "survey.invited"


class InvitationConflict(Exception):
    """The record already has an invitation to this survey."""


def new_link_token(tenant_id: uuid.UUID) -> str:
    """A fresh link token of ``tenant_id`` (shown once, never stored)."""
    return f"{PREFIX}_{tenant_id.hex}_{secrets.token_urlsafe(24)}"


def tenant_of_link(token: str) -> uuid.UUID | None:
    """The tenant a link token claims, or ``None`` when it is not a link token at all."""
    match = _LINK_RE.fullmatch(token or "")
    return uuid.UUID(match.group(1)) if match else None


def link_url(token: str) -> str:
    """Where the customer answers: ``SURVEY_LINK_URL`` with ``{token}`` filled in
    (default: the public API route)."""
    template = DEFAULT_LINK_URL
    if has_app_context():
        template = current_app.config.get("SURVEY_LINK_URL") or DEFAULT_LINK_URL
    return template.replace("{token}", token)


# -- personal data --------------------------------------------------------------------


def customer_view(invitation: SurveyInvitation, clear: bool) -> dict:
    """The invitation's customer, masked (:func:`core.personal.mask_text`) unless ``clear``."""
    customer = {"name": invitation.customer_name, "email": invitation.customer_email,
                "phone": invitation.customer_phone}
    if clear:
        return customer
    return {k: (mask_text(v) if v else v) for k, v in customer.items()}


def audit_customer_reads(session, invitations, actor_id) -> int:
    """One ``personal_data_read`` audit event per invitation naming a customer, for a
    reader who sees them in clear (as :func:`core.personal.audit_reads` does for
    records). The caller commits."""
    events = [AuditEvent(entity="survey_invitations", entity_id=i.id, action=READ_ACTION,
                         actor_user_id=actor_id,
                         changes={"paths": [f"customer.{k}" for k in ("name", "email", "phone")
                                            if getattr(i, f"customer_{k}")]})
              for i in invitations if i.customer_name or i.customer_email or i.customer_phone]
    session.add_all(events)
    return len(events)


def status_of(invitation: SurveyInvitation, now: datetime | None = None) -> str:
    """``answered``, ``revoked``, ``expired`` or ``pending``."""
    now = now or utcnow()
    if invitation.responded_at is not None:
        return "answered"
    if invitation.revoked_at is not None:
        return "revoked"
    if invitation.expires_at <= now:
        return "expired"
    return "pending"


# -- creating -----------------------------------------------------------------------


def create_invitation(session, survey: Survey, *, customer: dict, record_id: uuid.UUID | None = None,
                      language: str | None = None, expires_at: datetime | None = None,
                      source: str = "manual", actor_id: uuid.UUID | None = None,
                      send: bool = True) -> tuple[SurveyInvitation, str]:
    """Add an invitation to ``survey`` and return it with its clear link token.

    With ``send``, a ``survey.invited`` event carrying the link and the customer's
    contact goes to the tenant's webhooks (the tenant's mailer or SMS gateway delivers
    it) once the transaction commits.

    :raises InvitationConflict: ``record_id`` already has an invitation to this survey
        (nothing is added; the session stays usable).
    """
    if record_id is not None and session.scalar(
            select(SurveyInvitation.id).where(SurveyInvitation.survey_id == survey.id,
                                              SurveyInvitation.record_id == record_id)) is not None:
        raise InvitationConflict()
    now = utcnow()
    clear = new_link_token(session.tenant_id)
    invitation = SurveyInvitation(
        id=uuid.uuid4(),
        survey_id=survey.id,
        record_id=record_id,
        token_hash=hash_token(clear),
        customer_name=customer.get("name") or None,
        customer_email=customer.get("email") or None,
        customer_phone=customer.get("phone") or None,
        language=language or survey.language,
        source=source,
        expires_at=expires_at or now + timedelta(days=survey.link_lifetime_days),
        created_by=actor_id,
        created_at=now,
        updated_at=now,
    )
    try:
        with session.begin_nested():  # a concurrent trigger for the same record loses here
            session.add(invitation)
    except IntegrityError:
        raise InvitationConflict() from None
    if send:
        from servq.core.notify.outbox import emit

        emit(session, EVENT, {
            "survey_id": survey.id,
            "invitation_id": invitation.id,
            "record_id": record_id,
            "language": invitation.language,
            "expires_at": invitation.expires_at,
            "link": link_url(clear),
            "customer": customer_view(invitation, clear=True),
        }, dedupe_key=f"{EVENT}:{invitation.id}")
    return invitation, clear


#: The longest a link may live, in days.
MAX_LINK_DAYS = 366


def invite(session, survey: Survey, *, customer: dict, record_id: uuid.UUID | None = None,
           language: str | None = None, expires_at: datetime | None = None,
           actor_id: uuid.UUID | None = None, send: bool = True) -> tuple[SurveyInvitation, str]:
    """Invite a customer by hand, as ``POST /surveys/<id>/invitations`` does: the survey
    must be active, the link expire within :data:`MAX_LINK_DAYS`, the record (if any)
    exist; then :func:`create_invitation`, audited. Returns it with its clear token.

    :raises SurveyConflict: the survey is inactive, or the record has an invitation to it.
    :raises SurveyInvalid: the expiry or the record is refused.
    """
    if not survey.active:
        raise SurveyConflict("This survey is inactive: activate it before inviting.")
    now = utcnow()
    if expires_at is not None and not now < expires_at <= now + timedelta(days=MAX_LINK_DAYS):
        raise SurveyInvalid("A link expires in the future, within a year.",
                            {"expires_at": ["Must be after now and within 366 days."]})
    if record_id is not None and session.scalar(
            select(Record.id).where(Record.id == record_id, Record.deleted_at.is_(None))) is None:
        raise SurveyInvalid("No such record in this tenant.",
                            {"record_id": ["No such record in this tenant."]})
    try:
        invitation, clear = create_invitation(
            session, survey, customer=customer, record_id=record_id, language=language,
            expires_at=expires_at, actor_id=actor_id, send=send)
    except InvitationConflict:
        raise SurveyConflict("This record already has an invitation to this survey.") from None
    audit(session, "survey_invitations", invitation.id, "created", actor_id,
          {"survey_id": [None, str(survey.id)], "record_id": [None, jsonable(record_id)]})
    return invitation, clear


def revoke_invitation(session, invitation: SurveyInvitation, actor_id: uuid.UUID | None) -> None:
    """Revoke an unanswered invitation (audited; a second revocation changes nothing):
    its link answers 410 from now on.

    :raises SurveyConflict: it has been answered.
    """
    if invitation.responded_at is not None:
        raise SurveyConflict("This invitation has been answered; it cannot be revoked.")
    if invitation.revoked_at is None:
        changes = apply_changes(invitation, {"revoked_at": utcnow()})
        audit(session, "survey_invitations", invitation.id, "revoked", actor_id, changes)


def invitations_statement(survey_id: uuid.UUID, status: str | None = None,
                          record_id: uuid.UUID | None = None, now: datetime | None = None):
    """SELECT of a survey's invitations, newest first, optionally of one record or of one
    status (``pending``, ``answered``, ``expired``, ``revoked`` as :func:`status_of` says)."""
    inv = SurveyInvitation
    stmt = select(inv).where(inv.survey_id == survey_id).order_by(inv.created_at.desc(), inv.id)
    if record_id is not None:
        stmt = stmt.where(inv.record_id == record_id)
    now = now or utcnow()
    if status == "answered":
        stmt = stmt.where(inv.responded_at.is_not(None))
    elif status == "revoked":
        stmt = stmt.where(inv.responded_at.is_(None), inv.revoked_at.is_not(None))
    elif status == "expired":
        stmt = stmt.where(inv.responded_at.is_(None), inv.revoked_at.is_(None), inv.expires_at <= now)
    elif status == "pending":
        stmt = stmt.where(inv.responded_at.is_(None), inv.revoked_at.is_(None), inv.expires_at > now)
    return stmt


def find_invitation(session, survey_id: uuid.UUID, invitation_id: uuid.UUID) -> SurveyInvitation | None:
    """The tenant's invitation to that survey, or ``None``."""
    return session.scalar(select(SurveyInvitation).where(
        SurveyInvitation.id == invitation_id, SurveyInvitation.survey_id == survey_id))


# -- triggers ---------------------------------------------------------------------------

#: (tenant id, {kind: [(survey id, status)]}) of the tenant's active surveys.
_CACHE_KEY: Slot[tuple] = Slot("survey_triggers", TENANT, __name__)
#: (tenant id, frozenset of the record kinds for which one of the tenant's active
#: surveys has a trigger), read with the request's token: a record of any other kind
#: needs no look at the triggers.
SURVEY_TRIGGER_KINDS: Slot[tuple] = Slot("survey_trigger_kinds", TENANT, __name__)
_SEP = "\x1f"  # between aggregated kinds (ASCII unit separator, never in a kind name)


def _trigger_kinds_column(tenant_id):
    st, sv = SurveyTrigger.__table__, Survey.__table__
    return (select(func.aggregate_strings(st.c.kind, _SEP))
            .select_from(st.join(sv, (sv.c.tenant_id == st.c.tenant_id) & (sv.c.id == st.c.survey_id)))
            .where(st.c.tenant_id == tenant_id, sv.c.active.is_(True))
            .scalar_subquery())


tenant_fact(
    "survey_trigger_kinds", _trigger_kinds_column,
    "(SELECT string_agg(st.kind, chr(31)) FROM survey_triggers st\n"
    "         JOIN surveys sv ON sv.tenant_id = st.tenant_id AND sv.id = st.survey_id\n"
    "         WHERE st.tenant_id = %(tenant_id)s AND sv.active) AS trigger_kinds",
    lambda session, tenant_id, kinds: session.state.set(
        SURVEY_TRIGGER_KINDS, (tenant_id, frozenset(kinds.split(_SEP)) if kinds else frozenset())))


def triggers_by_kind(session) -> dict[str, list[tuple[uuid.UUID, str | None]]]:
    """The tenant's triggers of active surveys, ``{kind: [(survey id, status), ...]}``.

    Cached on the session (one query per request, job or import, however many records
    it touches); :func:`forget_triggers` clears it after a change.
    """
    cached = session.state.get(_CACHE_KEY)
    if cached is not None and cached[0] == session.tenant_id:
        return cached[1]
    rows = session.execute(
        select(SurveyTrigger.kind, SurveyTrigger.survey_id, SurveyTrigger.status)
        .join(Survey, and_(Survey.tenant_id == SurveyTrigger.tenant_id, Survey.id == SurveyTrigger.survey_id))
        .where(Survey.active.is_(True))
    ).all()
    found: dict[str, list] = {}
    for kind, survey_id, status in rows:
        found.setdefault(kind, []).append((survey_id, status))
    session.state.set(_CACHE_KEY, (session.tenant_id, found))
    return found


def forget_triggers(session) -> None:
    """Drop the session's cached triggers (after surveys or triggers changed)."""
    session.state.pop(_CACHE_KEY)
    session.state.pop(SURVEY_TRIGGER_KINDS)


def _text(value, limit: int) -> str | None:
    if isinstance(value, str) and value.strip() and "\x00" not in value:
        return value.strip()[:limit]
    return None


def customer_of(record: Record) -> dict:
    """The customer a record names, from its ``data``.

    Read from ``data["customer"]`` = ``{"name", "email", "phone", "language"}``, or, for
    kinds that keep them flat, from ``customer_name``, ``customer_email``,
    ``customer_phone`` and ``customer_language`` (``language`` is ``en`` or ``zh``).
    """
    data = record.data or {}
    nested = data.get("customer") if isinstance(data.get("customer"), dict) else {}

    def pick(key: str, limit: int):
        return _text(nested.get(key), limit) or _text(data.get(f"customer_{key}"), limit)

    language = pick("language", 8)
    return {"name": pick("name", 200), "email": pick("email", 254), "phone": pick("phone", 40),
            "language": language if language in LANGUAGES else None}


def invite_for_record(session, record: Record, status: str | None, *, created: bool) -> list[SurveyInvitation]:
    """Create the invitations the tenant's triggers ask for, now that ``record`` was
    created (``created``) or entered ``status``.

    A trigger without a status fires when a record of its kind is created; one with a
    status fires when the record enters it (a record created in that status enters it
    too). Records naming no customer email or phone get no invitation (there is no one
    to send it to). Returns the invitations created.
    """
    # The request's authentication already read which kinds the tenant's triggers watch:
    # a record of any other kind needs no look at the triggers.
    watched = session.state.get(SURVEY_TRIGGER_KINDS)
    if watched is not None and watched[0] == session.tenant_id and record.kind not in watched[1]:
        return []
    triggers = triggers_by_kind(session).get(record.kind)
    if not triggers or record.deleted_at is not None:
        return []
    survey_ids = {sid for sid, trigger_status in triggers
                  if trigger_status == status or (created and trigger_status is None)}
    if not survey_ids:
        return []
    customer = customer_of(record)
    if not (customer["email"] or customer["phone"]):
        log.info("record %s names no customer contact: no survey invitation", record.id)
        return []
    created_now = []
    for survey in session.scalars(select(Survey).where(Survey.id.in_(survey_ids)).order_by(Survey.created_at)):
        try:
            invitation, _ = create_invitation(session, survey, customer=customer, record_id=record.id,
                                              language=customer["language"], source="trigger")
        except InvitationConflict:
            continue
        created_now.append(invitation)
    return created_now
