"""Storing surveys and their answers: the functions the HTTP API and plugins share.

* :func:`find_instrument` — a built-in or the tenant's own instrument by code.
* :func:`create_survey` — a survey of an instrument, checked and audited, with its triggers;
  :func:`new_survey` — the same from an instrument code, as ``POST /surveys`` asks.
* :func:`change_survey`, :func:`delete_survey` — what may change once a survey exists.
* :func:`store_response` — a scored response with its answer rows and roll-ups.

They add to the session and flush; committing is the caller's. A refused change raises
a :class:`~core.surveys.errors.SurveyError` before anything is written.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from typing import Callable, Mapping

from sqlalchemy import delete, select

from servq.core.audit import apply_changes, audit
from servq.core.db import utcnow
from servq.core.models import (Survey, SurveyAnswer, SurveyDimensionScore, SurveyInstrument, SurveyInvitation,
                         SurveyResponse, SurveyTrigger)
from servq.core.surveys.answers import Scored
from servq.core.surveys.errors import SurveyConflict, SurveyInvalid
from servq.core.surveys.instruments import allowed_forms, builtin, form_refusal
from servq.core.surveys.invitations import forget_triggers
from servq.core.surveys.rollups import add_rollups, response_rows


def find_instrument(session, code: str) -> tuple[dict, int] | None:
    """A built-in or the tenant's instrument: ``(document, version)``, or ``None``."""
    doc = builtin(code)
    if doc is not None:
        return doc, doc.get("version", 1)
    row = session.scalar(select(SurveyInstrument).where(SurveyInstrument.code == code))
    if row is None:
        return None
    return {**row.document, "code": row.code, "version": row.version}, row.version


def default_form(doc: dict) -> str:
    """The form a survey of ``doc`` gets when none is asked for: two columns when the
    instrument has dimensions and allows it, else a single column."""
    return "two_column" if doc.get("dimensions") and "two_column" in allowed_forms(doc) else "single"


def check_importance(doc: dict, importance: str) -> None:
    """Importance points are shared among dimensions: refused for fewer than two.

    :raises SurveyInvalid: ``importance`` is not ``none`` and ``doc`` has fewer than two dimensions.
    """
    if importance != "none" and len(doc.get("dimensions", [])) < 2:
        raise SurveyInvalid("Importance points are shared among dimensions: this instrument has "
                            "fewer than two.", {"importance": ["Needs two dimensions or more."]})


def check_triggers(kinds: Mapping, triggers: list[dict]) -> list[dict]:
    """The triggers ``[{kind, status}]``, each naming one of ``kinds`` (the tenant's record
    kinds) and one of its statuses (or ``None``: on creation), none twice.

    :raises SurveyInvalid: naming each bad trigger by its position.
    """
    errors = {}
    seen = set()
    for n, trigger in enumerate(triggers):
        kind = kinds.get(trigger["kind"])
        if kind is None:
            errors[n] = {"kind": [f"Unknown record kind {trigger['kind']!r}; this tenant may use: "
                                  f"{', '.join(sorted(kinds))}."]}
        elif trigger["status"] is not None and trigger["status"] not in kind.statuses:
            errors[n] = {"status": [f"Must be one of: {', '.join(kind.statuses)}."]}
        key = (trigger["kind"], trigger["status"])
        if key in seen:
            errors[n] = {"_schema": ["The same trigger is given twice."]}
        seen.add(key)
    if errors:
        raise SurveyInvalid("The triggers are not valid.", {"triggers": errors})
    return [{"kind": t["kind"], "status": t["status"]} for t in triggers]


def triggers_of(session, survey_ids: list[uuid.UUID]) -> dict[uuid.UUID, list[dict]]:
    """``{survey id: [{kind, status}, ...]}`` of the surveys, in kind and status order."""
    if not survey_ids:
        return {}
    out: dict[uuid.UUID, list[dict]] = {sid: [] for sid in survey_ids}
    rows = session.scalars(
        select(SurveyTrigger).where(SurveyTrigger.survey_id.in_(survey_ids))
        .order_by(SurveyTrigger.kind, SurveyTrigger.status))
    for t in rows:
        out[t.survey_id].append({"kind": t.kind, "status": t.status})
    return out


def set_triggers(session, survey: Survey, triggers: list[dict]) -> None:
    """Replace the survey's triggers with ``triggers`` (already checked)."""
    session.execute(delete(SurveyTrigger).where(SurveyTrigger.survey_id == survey.id))
    for t in triggers:
        session.add(SurveyTrigger(survey_id=survey.id, kind=t["kind"], status=t["status"]))
    forget_triggers(session)


def surveys_statement(active: bool | None = None):
    """SELECT of the tenant's surveys, newest first (``active``: only those, or the others)."""
    stmt = select(Survey).order_by(Survey.created_at.desc(), Survey.id)
    if active is not None:
        stmt = stmt.where(Survey.active.is_(active))
    return stmt


def find_survey(session, survey_id: uuid.UUID) -> Survey | None:
    """The tenant's survey, or ``None``."""
    return session.scalar(select(Survey).where(Survey.id == survey_id))


def create_survey(session, doc: dict, version: int, *, title: dict[str, str], form: str | None = None,
                  importance: str = "none", language: str = "en", link_lifetime_days: int = 30,
                  active: bool = True, actor_id: uuid.UUID | None = None,
                  triggers: list[dict] | None = None, kinds: Mapping | None = None) -> Survey:
    """Add and audit a survey of instrument ``doc`` (as :func:`find_instrument` returns it).

    ``form`` defaults to :func:`default_form`. The form must be one the instrument allows
    and importance points need two dimensions or more. ``triggers`` (``[{kind, status}]``)
    are checked against ``kinds`` (the tenant's record kinds) and stored; ``None`` stores none.

    :raises SurveyInvalid: the form, the importance or a trigger is refused (nothing is added).
    """
    form = form or default_form(doc)
    forms = allowed_forms(doc)
    if form not in forms:
        raise SurveyInvalid(form_refusal(doc, form), {"form": [f"Must be one of: {', '.join(forms)}."]})
    check_importance(doc, importance)
    if triggers is not None:
        triggers = check_triggers(kinds or {}, triggers)
    survey = Survey(title=dict(title), instrument_code=doc["code"], instrument_version=version,
                    instrument=doc, form=form, importance=importance, language=language,
                    link_lifetime_days=link_lifetime_days, active=active, created_by=actor_id)
    session.add(survey)
    session.flush()
    audit(session, "surveys", survey.id, "created", actor_id,
          {"instrument": [None, doc["code"]], "form": [None, form], "triggers": [None, list(triggers or [])]})
    if triggers is not None:
        set_triggers(session, survey, triggers)
    return survey


def new_survey(session, kinds: Mapping, values: dict, actor_id: uuid.UUID | None) -> tuple[Survey, list[dict]]:
    """Create a survey as ``POST /surveys`` asks: ``values`` names the ``instrument`` by
    code, and ``title``, ``form``, ``importance``, ``language``, ``link_lifetime_days``,
    ``triggers``, ``active``. Returns the survey and its stored triggers.

    :raises SurveyInvalid: an unknown instrument, or as :func:`create_survey`.
    """
    found = find_instrument(session, values["instrument"])
    if found is None:
        raise SurveyInvalid(f"Unknown instrument {values['instrument']!r}.",
                            {"instrument": ["No built-in or tenant instrument has this code."]})
    doc, version = found
    survey = create_survey(session, doc, version, title=values["title"], form=values.get("form"),
                           importance=values["importance"], language=values["language"],
                           link_lifetime_days=values["link_lifetime_days"], active=values["active"],
                           actor_id=actor_id, triggers=values["triggers"], kinds=kinds)
    return survey, [{"kind": t["kind"], "status": t["status"]} for t in values["triggers"]]


def change_survey(session, survey: Survey, triggers: list[dict], values: dict,
                  kinds: Callable[[], Mapping], actor_id: uuid.UUID | None) -> dict:
    """Change a survey: title, language, link lifetime, importance, triggers (the list
    given replaces ``triggers``, the stored ones), active; its instrument and form are
    fixed. ``kinds()`` gives the tenant's record kinds (asked only when triggers are given).
    Audits what changed and returns it.

    :raises SurveyInvalid: the importance or a trigger is refused.
    """
    if "importance" in values:
        check_importance(survey.instrument, values["importance"])
    plain = {k: v for k, v in values.items() if k != "triggers"}
    if "title" in plain:
        plain["title"] = dict(plain["title"])
    changes = apply_changes(survey, plain)
    if "triggers" in values:
        new = check_triggers(kinds(), values["triggers"])
        if sorted(map(str, new)) != sorted(map(str, triggers)):
            set_triggers(session, survey, new)
            changes["triggers"] = [triggers, new]
    if "active" in changes:
        forget_triggers(session)
    if changes:
        survey.updated_at = utcnow()
        audit(session, "surveys", survey.id, "changed", actor_id, changes)
    return changes


def delete_survey(session, survey: Survey, actor_id: uuid.UUID | None) -> None:
    """Delete a survey that has no invitations yet, with its triggers (audited).

    :raises SurveyConflict: the survey has invitations (deactivate it instead).
    """
    if session.scalar(select(SurveyInvitation.id).where(SurveyInvitation.survey_id == survey.id).limit(1)):
        raise SurveyConflict("This survey has invitations: deactivate it (active: false) instead.")
    audit(session, "surveys", survey.id, "deleted", actor_id)
    session.execute(delete(SurveyTrigger).where(SurveyTrigger.survey_id == survey.id))
    session.delete(survey)
    forget_triggers(session)


def store_response(session, survey: Survey, invitation: SurveyInvitation, scored: Scored, *,
                   answers: Any, submitted_at: datetime, comment: str | None = None) -> SurveyResponse:
    """Store the answers to ``invitation`` as scored by
    :func:`core.surveys.answers.score_answers`: the response, its answer and dimension rows
    and the survey's roll-ups. Claiming the invitation (``responded_at``) is the caller's."""
    response = SurveyResponse(id=uuid.uuid4(), survey_id=survey.id, invitation_id=invitation.id,
                              record_id=invitation.record_id, submitted_at=submitted_at,
                              language=invitation.language, answers=answers,
                              importance=scored.importance, comment=comment)
    session.add(response)
    session.flush()  # no ORM relationships: the response goes first for the foreign keys
    session.add_all(SurveyAnswer(survey_id=survey.id, response_id=response.id, **row)
                    for row in scored.answers)
    session.add_all(SurveyDimensionScore(survey_id=survey.id, response_id=response.id, **row)
                    for row in scored.dimensions)
    add_rollups(session, response_rows(session.tenant_id, survey.id, submitted_at, scored.answers,
                                       scored.dimensions))
    return response
