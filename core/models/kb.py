"""The knowledge base: articles, their versions, and the records linked to them."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import ForeignKeyConstraint, Index, String, Text, UniqueConstraint, text
from sqlalchemy.orm import Mapped, mapped_column

from servq.core.db import Base, TenantOwned, utcnow


class KbArticle(TenantOwned, Base):
    """A knowledge-base article: what stays the same across its versions.

    ``version`` is its newest version (the one being written while a draft or in review);
    ``published_version`` the one readers get and record links pin (``None`` until first
    published). ``review_due_at`` = ``reviewed_at`` + ``review_every_days`` while
    published: past it, the review is overdue (a missed obligation); ``review_notified_for``
    holds the due instant the owner was last told about, so each lapse is told once.
    ``links`` counts the records linked to it.
    """

    __tablename__ = "kb_articles"
    __table_args__ = (
        ForeignKeyConstraint(["tenant_id"], ["tenants.id"], ondelete="CASCADE"),
        UniqueConstraint("tenant_id", "code", name="uq_kb_articles_code"),
        Index(None, "tenant_id", "status", "review_due_at"),
        Index(None, "tenant_id", "source_record_id"),
        Index(None, "tenant_id", "created_at"),
    )

    code: Mapped[str] = mapped_column(String(100))
    status: Mapped[str] = mapped_column(String(20), default="draft")
    version: Mapped[int] = mapped_column(default=1)
    published_version: Mapped[int | None]
    owner_id: Mapped[uuid.UUID | None]
    review_every_days: Mapped[int] = mapped_column(default=90)
    reviewed_at: Mapped[datetime | None]
    review_due_at: Mapped[datetime | None]
    review_notified_for: Mapped[datetime | None]
    source_record_id: Mapped[uuid.UUID | None]
    links: Mapped[int] = mapped_column(default=0, server_default=text("0"))
    created_by: Mapped[uuid.UUID | None]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class KbArticleVersion(TenantOwned, Base):
    """One version of an article's content, never changed once published.

    ``search_key`` is the normalised text of the version as search tokens (see
    :mod:`servq.core.kb.search`): `` 卫生 生间 间漏 漏水 leak pipe ``, each token between
    spaces, so a search is a ``LIKE`` on one column. ``kinds_key`` the same for
    ``applies_to`` (`` complaint inspection ``; a single space: any kind).
    """

    __tablename__ = "kb_article_versions"
    __table_args__ = (
        ForeignKeyConstraint(["tenant_id"], ["tenants.id"], ondelete="CASCADE"),
        ForeignKeyConstraint(["tenant_id", "article_id"], ["kb_articles.tenant_id", "kb_articles.id"],
                             ondelete="CASCADE"),
        UniqueConstraint("tenant_id", "article_id", "version", name="uq_kb_article_versions_version"),
    )

    article_id: Mapped[uuid.UUID]
    version: Mapped[int]
    title: Mapped[dict[str, Any]] = mapped_column(default=dict)
    problem: Mapped[str] = mapped_column(Text, default="")
    symptoms: Mapped[str] = mapped_column(Text, default="")
    cause: Mapped[str] = mapped_column(Text, default="")
    solution_steps: Mapped[list[Any]] = mapped_column(default=list)
    product: Mapped[str | None] = mapped_column(String(200))
    category: Mapped[str | None] = mapped_column(String(200))
    applies_to: Mapped[list[Any]] = mapped_column(default=list)
    search_key: Mapped[str] = mapped_column(Text, default=" ")
    kinds_key: Mapped[str] = mapped_column(Text, default=" ")
    created_by: Mapped[uuid.UUID | None]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    published_at: Mapped[datetime | None]


class KbLink(TenantOwned, Base):
    """A record solved (or helped) with an article, pinned to the version then published."""

    __tablename__ = "kb_links"
    __table_args__ = (
        ForeignKeyConstraint(["tenant_id"], ["tenants.id"], ondelete="CASCADE"),
        ForeignKeyConstraint(["tenant_id", "record_id"], ["records.tenant_id", "records.id"],
                             ondelete="CASCADE"),
        ForeignKeyConstraint(["tenant_id", "article_id"], ["kb_articles.tenant_id", "kb_articles.id"],
                             ondelete="CASCADE"),
        UniqueConstraint("tenant_id", "record_id", "article_id", name="uq_kb_links_record_article"),
        Index(None, "tenant_id", "article_id"),
    )

    record_id: Mapped[uuid.UUID]
    article_id: Mapped[uuid.UUID]
    version: Mapped[int]
    created_by: Mapped[uuid.UUID | None]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
