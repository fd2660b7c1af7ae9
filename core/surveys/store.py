"""Storing surveys and their answers: the functions the HTTP API and plugins share.

* :func:`find_instrument` — a built-in or the tenant's own instrument by code.
* :func:`create_survey` — a survey of an instrument, audited.
* :func:`store_response` — a scored response with its answer rows and roll-ups.

They add to the session and flush; committing is the caller's.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import select

from servq.core.audit import audit
from servq.core.models import (Survey, SurveyAnswer, SurveyDimensionScore, SurveyInstrument, SurveyInvitation,
                         SurveyResponse)
from servq.core.surveys.answers import Scored
from servq.core.surveys.instruments import allowed_forms, builtin
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


def create_survey(session, doc: dict, version: int, *, title: dict[str, str], form: str | None = None,
                  importance: str = "none", language: str = "en", link_lifetime_days: int = 30,
                  active: bool = True, actor_id: uuid.UUID | None = None,
                  triggers: list[dict] | None = None) -> Survey:
    """Add and audit a survey of instrument ``doc`` (as :func:`find_instrument` returns it).

    ``form`` defaults to :func:`default_form`; ``triggers`` (already checked) only go into the
    audit entry, storing them is the caller's. The caller checks ``form`` and ``importance``
    against the instrument first (the HTTP API answers 422)."""
    form = form or default_form(doc)
    survey = Survey(title=dict(title), instrument_code=doc["code"], instrument_version=version,
                    instrument=doc, form=form, importance=importance, language=language,
                    link_lifetime_days=link_lifetime_days, active=active, created_by=actor_id)
    session.add(survey)
    session.flush()
    audit(session, "surveys", survey.id, "created", actor_id,
          {"instrument": [None, doc["code"]], "form": [None, form], "triggers": [None, list(triggers or [])]})
    return survey


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
