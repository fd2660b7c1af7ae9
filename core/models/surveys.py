"""Surveys: instruments, surveys, invitations (single-use links), responses and answers.

Answers are stored one row per (response, item) in ``survey_answers``, with reverse
scoring already applied (a reverse-scored item on a 1-7 scale stores ``8 - x``); the
answers exactly as submitted stay in ``survey_responses.answers``. Each response also
gets one ``survey_dimension_scores`` row per dimension it touched: the respondent's mean
over the items of that dimension they answered, and their importance points. Hourly
running sums of both (``survey_rollups``) are added to in the same transaction. Results
are aggregated in SQL from these tables (see :mod:`core.surveys.results`).
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import ForeignKeyConstraint, Index, SmallInteger, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from servq.core.db import Base, TenantOwned, utcnow


class SurveyInstrument(TenantOwned, Base):
    """A questionnaire a tenant wrote itself (the built-in ones live in code).

    ``document`` holds title, scale, dimensions and items as
    :class:`core.surveys.instruments.InstrumentSchema` loads them; each change bumps
    ``version``. Surveys keep a copy of the document they were created with.
    """

    __tablename__ = "survey_instruments"
    __table_args__ = (
        ForeignKeyConstraint(["tenant_id"], ["tenants.id"], ondelete="CASCADE"),
        UniqueConstraint("tenant_id", "code"),
    )

    code: Mapped[str] = mapped_column(String(63))
    version: Mapped[int] = mapped_column(default=1)
    document: Mapped[dict[str, Any]]
    created_by: Mapped[uuid.UUID | None]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class Survey(TenantOwned, Base):
    """An instrument put to use: the form it is asked in, language, link lifetime, triggers.

    ``instrument`` is the instrument's document as it was when the survey was created,
    so later changes to the instrument never change the meaning of stored answers.
    """

    __tablename__ = "surveys"
    __table_args__ = (
        ForeignKeyConstraint(["tenant_id"], ["tenants.id"], ondelete="CASCADE"),
        Index(None, "tenant_id", "created_at"),
    )

    title: Mapped[dict[str, Any]]  # {"en": ..., "zh": ...}
    instrument_code: Mapped[str] = mapped_column(String(63))
    instrument_version: Mapped[int]
    instrument: Mapped[dict[str, Any]]
    form: Mapped[str] = mapped_column(String(20))  # single | two_column | three_column
    importance: Mapped[str] = mapped_column(String(10), default="none")  # none|optional|required
    language: Mapped[str] = mapped_column(String(8), default="en")
    link_lifetime_days: Mapped[int] = mapped_column(default=30)
    active: Mapped[bool] = mapped_column(default=True)
    created_by: Mapped[uuid.UUID | None]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class SurveyTrigger(TenantOwned, Base):
    """Invite automatically when a record of ``kind`` enters ``status`` (``None``: when a
    record of ``kind`` is created)."""

    __tablename__ = "survey_triggers"
    __table_args__ = (
        ForeignKeyConstraint(["tenant_id"], ["tenants.id"], ondelete="CASCADE"),
        ForeignKeyConstraint(["tenant_id", "survey_id"], ["surveys.tenant_id", "surveys.id"],
                             ondelete="CASCADE"),
        UniqueConstraint("tenant_id", "survey_id", "kind", "status"),
        Index(None, "tenant_id", "kind", "status"),
    )

    survey_id: Mapped[uuid.UUID]
    kind: Mapped[str] = mapped_column(String(100))
    status: Mapped[str | None] = mapped_column(String(40))


class SurveyInvitation(TenantOwned, Base):
    """A single-use link to one survey for one customer, optionally about one record.

    Only the SHA-256 of the link token is stored. ``customer_*`` are personal data (shown
    masked to roles without the ``personal_data`` permission). One invitation per record
    and survey (unique), however often a trigger fires.
    """

    __tablename__ = "survey_invitations"
    __table_args__ = (
        ForeignKeyConstraint(["tenant_id"], ["tenants.id"], ondelete="CASCADE"),
        ForeignKeyConstraint(["tenant_id", "survey_id"], ["surveys.tenant_id", "surveys.id"],
                             ondelete="CASCADE"),
        ForeignKeyConstraint(["tenant_id", "record_id"], ["records.tenant_id", "records.id"]),
        UniqueConstraint("tenant_id", "token_hash"),
        UniqueConstraint("tenant_id", "survey_id", "record_id"),
        Index(None, "tenant_id", "survey_id", "created_at"),
        Index(None, "tenant_id", "record_id"),
    )

    survey_id: Mapped[uuid.UUID]
    record_id: Mapped[uuid.UUID | None]
    token_hash: Mapped[str] = mapped_column(String(64))
    customer_name: Mapped[str | None] = mapped_column(String(200))
    customer_email: Mapped[str | None] = mapped_column(String(254))
    customer_phone: Mapped[str | None] = mapped_column(String(40))
    language: Mapped[str] = mapped_column(String(8), default="en")
    source: Mapped[str] = mapped_column(String(10), default="manual")  # manual | trigger
    expires_at: Mapped[datetime]
    responded_at: Mapped[datetime | None]
    revoked_at: Mapped[datetime | None]
    created_by: Mapped[uuid.UUID | None]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class SurveyResponse(TenantOwned, Base):
    """The one response to an invitation: when, the answers as submitted, importance points.

    ``record_id`` is copied from the invitation so results filter by site, staff and kind
    with one join.
    """

    __tablename__ = "survey_responses"
    __table_args__ = (
        ForeignKeyConstraint(["tenant_id"], ["tenants.id"], ondelete="CASCADE"),
        ForeignKeyConstraint(["tenant_id", "survey_id"], ["surveys.tenant_id", "surveys.id"],
                             ondelete="CASCADE"),
        ForeignKeyConstraint(["tenant_id", "invitation_id"],
                             ["survey_invitations.tenant_id", "survey_invitations.id"],
                             ondelete="CASCADE"),
        ForeignKeyConstraint(["tenant_id", "record_id"], ["records.tenant_id", "records.id"]),
        UniqueConstraint("tenant_id", "invitation_id"),
        Index(None, "tenant_id", "survey_id", "submitted_at"),
        Index(None, "tenant_id", "record_id"),
    )

    survey_id: Mapped[uuid.UUID]
    invitation_id: Mapped[uuid.UUID]
    record_id: Mapped[uuid.UUID | None]
    submitted_at: Mapped[datetime] = mapped_column(default=utcnow)
    language: Mapped[str] = mapped_column(String(8))
    answers: Mapped[dict[str, Any]]
    importance: Mapped[dict[str, Any] | None]
    comment: Mapped[str | None] = mapped_column(Text)


class SurveyAnswer(TenantOwned, Base):
    """One item of one response, reverse scoring applied.

    ``item`` is the item's 1-based position in the survey's instrument. Single-answer
    items store their answer in ``perceived``; the two-column form fills ``expectation``
    and ``perceived``, the three-column form ``adequate``, ``desired`` and ``perceived``.
    """

    __tablename__ = "survey_answers"
    __table_args__ = (
        ForeignKeyConstraint(["tenant_id"], ["tenants.id"], ondelete="CASCADE"),
        ForeignKeyConstraint(["tenant_id", "survey_id"], ["surveys.tenant_id", "surveys.id"],
                             ondelete="CASCADE"),
        ForeignKeyConstraint(["tenant_id", "response_id"],
                             ["survey_responses.tenant_id", "survey_responses.id"],
                             ondelete="CASCADE"),
        # Covering index: results per item are an index-only scan on PostgreSQL.
        Index(None, "tenant_id", "survey_id", "item",
              postgresql_include=["response_id", "expectation", "adequate", "desired", "perceived"]),
        Index(None, "tenant_id", "response_id"),
    )

    survey_id: Mapped[uuid.UUID]
    response_id: Mapped[uuid.UUID]
    item: Mapped[int] = mapped_column(SmallInteger)
    expectation: Mapped[int | None] = mapped_column(SmallInteger)
    adequate: Mapped[int | None] = mapped_column(SmallInteger)
    desired: Mapped[int | None] = mapped_column(SmallInteger)
    perceived: Mapped[int | None] = mapped_column(SmallInteger)


class SurveyDimensionScore(TenantOwned, Base):
    """One respondent's score on one dimension: the mean over the items of the dimension
    they answered (reverse scoring applied), and the importance points they gave it.

    ``dimension`` is the dimension's 1-based position in the instrument.
    """

    __tablename__ = "survey_dimension_scores"
    __table_args__ = (
        ForeignKeyConstraint(["tenant_id"], ["tenants.id"], ondelete="CASCADE"),
        ForeignKeyConstraint(["tenant_id", "survey_id"], ["surveys.tenant_id", "surveys.id"],
                             ondelete="CASCADE"),
        ForeignKeyConstraint(["tenant_id", "response_id"],
                             ["survey_responses.tenant_id", "survey_responses.id"],
                             ondelete="CASCADE"),
        Index(None, "tenant_id", "survey_id", "dimension",
              postgresql_include=["response_id", "expectation", "adequate", "desired", "perceived",
                                  "importance"]),
        Index(None, "tenant_id", "response_id"),
    )

    survey_id: Mapped[uuid.UUID]
    response_id: Mapped[uuid.UUID]
    dimension: Mapped[int] = mapped_column(SmallInteger)
    items: Mapped[int] = mapped_column(SmallInteger, default=0)
    expectation: Mapped[float | None]
    adequate: Mapped[float | None]
    desired: Mapped[float | None]
    perceived: Mapped[float | None]
    importance: Mapped[int | None] = mapped_column(SmallInteger)


class SurveyRollup(TenantOwned, Base):
    """Running sums of one survey per hour of submission, kept in step with every response.

    ``level`` 0 counts responses (``key`` 0); level 1 is an item (``key``: its position),
    level 2 a dimension (``key``: its position). The columns are the sums results need:
    ``n`` answers, ``s_x`` = Σx and ``s_xy`` = Σx·y over expectation (``e``), adequate
    (``a``), desired (``d``) and perceived (``p``), the importance points (``w_n``,
    ``s_w``, ``s_ww``) and the NPS and CSAT counts. Results over whole hours add these up
    instead of scanning every answer; see :mod:`core.surveys.rollups`.
    """

    __tablename__ = "survey_rollups"
    __table_args__ = (
        ForeignKeyConstraint(["tenant_id"], ["tenants.id"], ondelete="CASCADE"),
        ForeignKeyConstraint(["tenant_id", "survey_id"], ["surveys.tenant_id", "surveys.id"],
                             ondelete="CASCADE"),
        UniqueConstraint("tenant_id", "survey_id", "bucket", "level", "key"),
    )

    survey_id: Mapped[uuid.UUID]
    bucket: Mapped[datetime]
    level: Mapped[int] = mapped_column(SmallInteger)
    key: Mapped[int] = mapped_column(SmallInteger)
    n: Mapped[int] = mapped_column(default=0)
    s_e: Mapped[float] = mapped_column(default=0)
    s_ee: Mapped[float] = mapped_column(default=0)
    s_a: Mapped[float] = mapped_column(default=0)
    s_aa: Mapped[float] = mapped_column(default=0)
    s_d: Mapped[float] = mapped_column(default=0)
    s_dd: Mapped[float] = mapped_column(default=0)
    s_p: Mapped[float] = mapped_column(default=0)
    s_pp: Mapped[float] = mapped_column(default=0)
    s_pe: Mapped[float] = mapped_column(default=0)
    s_pa: Mapped[float] = mapped_column(default=0)
    s_pd: Mapped[float] = mapped_column(default=0)
    w_n: Mapped[int] = mapped_column(default=0)
    s_w: Mapped[float] = mapped_column(default=0)
    s_ww: Mapped[float] = mapped_column(default=0)
    promoters: Mapped[int] = mapped_column(default=0)
    detractors: Mapped[int] = mapped_column(default=0)
    satisfied: Mapped[int] = mapped_column(default=0)
