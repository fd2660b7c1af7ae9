"""Articles, their versions and their lifecycle, and the links of records to them.

Lifecycle (``POST /kb/articles/<id>/transitions``)::

    draft ─submit→ in_review ─publish→ published ─retire→ retired
      ↑              │  └─return→ draft              │ ↺ review (still right: the review
      └──────────────┘                               │   clock starts again)
    draft ─publish→ published (a manager may skip the review step)

Any writer creates and edits drafts and submits them; only a manager (``manage``)
publishes, returns, reviews and retires. The content of a draft or an article in review is
edited in place (its newest version, which nobody can link yet). An edit of a published
article (a manager's) makes a **new version**, published at once: the links made before
keep pinning the version that was used. A retired article is not edited.

Publishing (and reviewing) stamps ``reviewed_at`` and sets ``review_due_at`` =
``reviewed_at`` + ``review_every_days``: see :mod:`.reviews`.
"""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select, update

from servq.core.audit import audit, jsonable
from servq.core.auth.permissions import allowed
from servq.core.kb import search
from servq.core.models import KbArticle, KbArticleVersion, KbLink

STATUSES = ("draft", "in_review", "published", "retired")
#: action -> (states it leaves, state it reaches, permission it needs)
TRANSITIONS: dict[str, tuple[tuple[str, ...], str, str]] = {
    "submit": (("draft",), "in_review", "write"),
    "return": (("in_review",), "draft", "manage"),
    "publish": (("draft", "in_review"), "published", "manage"),
    "review": (("published",), "published", "manage"),
    "retire": (("published",), "retired", "manage"),
}
#: The fields of a version (its content).
CONTENT = ("title", "problem", "symptoms", "cause", "solution_steps", "product", "category", "applies_to")
DEFAULT_REVIEW_DAYS = 90


class KbRefused(Exception):
    """A step the rules refuse: ``status`` is the HTTP status to answer with."""

    def __init__(self, status: int, message: str, errors: dict | None = None):
        super().__init__(message)
        self.status, self.message, self.errors = status, message, errors


def _search_texts(content: dict[str, Any]) -> list[str]:
    title = content.get("title") or {}
    return [*(str(v) for v in title.values()), content.get("problem") or "", content.get("symptoms") or "",
            content.get("cause") or "", *(str(s) for s in content.get("solution_steps") or ()),
            content.get("product") or "", content.get("category") or ""]


def _fill(version: KbArticleVersion, content: dict[str, Any]) -> None:
    for name in CONTENT:
        setattr(version, name, content.get(name))
    version.search_key = search.key(_search_texts(content))
    kinds = content.get("applies_to") or []
    version.kinds_key = " " + " ".join(kinds) + " " if kinds else " "


def content_of(version: KbArticleVersion) -> dict[str, Any]:
    return {name: getattr(version, name) for name in CONTENT}


def current_version(session, article: KbArticle, version: int | None = None) -> KbArticleVersion:
    return session.scalar(select(KbArticleVersion).where(KbArticleVersion.article_id == article.id,
                                                         KbArticleVersion.version == (version or article.version)))


def create_article(session, body: dict[str, Any], *, actor_id, now: datetime) -> KbArticle:
    """A new draft (version 1). 409 when the code is taken."""
    if session.scalar(select(KbArticle.id).where(KbArticle.code == body["code"])) is not None:
        raise KbRefused(409, f"An article with code {body['code']!r} exists already.")
    article = KbArticle(id=uuid.uuid4(), code=body["code"], status="draft", version=1,
                        owner_id=body.get("owner_id") or actor_id,
                        review_every_days=body.get("review_every_days") or DEFAULT_REVIEW_DAYS,
                        source_record_id=body.get("source_record_id"), created_by=actor_id,
                        created_at=now, updated_at=now)
    version = KbArticleVersion(article_id=article.id, version=1, created_by=actor_id, created_at=now)
    _fill(version, {name: body.get(name) for name in CONTENT})
    session.add_all([article, version])
    session.flush()
    audit(session, "kb_articles", article.id, "created", actor_id,
          {"code": [None, article.code], "source_record_id": [None, jsonable(article.source_record_id)]})
    return article


def edit_article(session, article: KbArticle, body: dict[str, Any], *, actor_id, role: str,
                 now: datetime) -> KbArticle:
    """Change an article's content and settings (see the module docstring)."""
    if article.status == "retired":
        raise KbRefused(409, "A retired article is not edited.")
    content_changes = {name: body[name] for name in CONTENT if name in body}
    if article.status == "published" and content_changes and not allowed(role, "manage"):
        raise KbRefused(403, "Only a manager edits a published article (each edit is a new version).")
    changes: dict[str, list] = {}
    for name in ("owner_id", "review_every_days"):
        if name in body and body[name] is not None and getattr(article, name) != body[name]:
            changes[name] = [jsonable(getattr(article, name)), jsonable(body[name])]
            setattr(article, name, body[name])
    if "review_every_days" in changes and article.reviewed_at is not None:
        article.review_due_at = article.reviewed_at + timedelta(days=article.review_every_days)
    if content_changes:
        version = current_version(session, article)
        merged = {**content_of(version), **content_changes}
        if merged != content_of(version):
            if article.status == "published":
                version = KbArticleVersion(article_id=article.id, version=article.version + 1,
                                           created_by=actor_id, created_at=now, published_at=now)
                _fill(version, merged)
                session.add(version)
                article.version = article.published_version = version.version
                changes["version"] = [article.version - 1, article.version]
            else:
                _fill(version, merged)
            changes.update({name: [None, jsonable(value)] for name, value in content_changes.items()})
    if changes:
        article.updated_at = now
        session.flush()
        audit(session, "kb_articles", article.id, "edited", actor_id, changes)
    return article


def transition(session, article: KbArticle, action: str, *, actor_id, role: str, now: datetime) -> KbArticle:
    """Move an article on by ``action`` (see :data:`TRANSITIONS`)."""
    sources, target, permission = TRANSITIONS[action]
    if not allowed(role, permission):
        raise KbRefused(403, f"Your role ({role}) may not {action} an article: it needs '{permission}'.")
    if article.status not in sources:
        raise KbRefused(409, f"An article that is {article.status} cannot be {action}ed "
                             f"(allowed from: {', '.join(sources)}).")
    before = article.status
    article.status = target
    if action in ("publish", "review"):
        article.reviewed_at = now
        article.review_due_at = now + timedelta(days=article.review_every_days)
    if action == "publish":
        article.published_version = article.version
        version = current_version(session, article)
        version.published_at = now
    if action == "retire":
        article.review_due_at = None
    article.updated_at = now
    session.flush()
    audit(session, "kb_articles", article.id, action, actor_id,
          {"status": [before, target], "version": [None, article.version]})
    return article


def find_articles(session, refs) -> dict[str, KbArticle]:
    """The tenant's articles named by ``refs``, each an article's id (a UUID, or its text)
    or its ``code``: ``{ref: article}`` for those found (one query); a ref of neither is
    left out."""
    refs = [str(ref) for ref in refs]
    if not refs:
        return {}
    ids = {}
    for ref in refs:
        try:
            ids[ref] = uuid.UUID(ref)
        except ValueError:
            pass
    condition = KbArticle.code.in_(sorted(set(refs)))
    if ids:
        condition = condition | KbArticle.id.in_(sorted(set(ids.values())))
    rows = session.scalars(select(KbArticle).where(condition)).all()
    by_code = {a.code: a for a in rows}
    by_id = {a.id: a for a in rows}
    found = {}
    for ref in refs:
        article = by_code.get(ref) or (by_id.get(ids[ref]) if ref in ids else None)
        if article is not None:
            found[ref] = article
    return found


def link(session, record, article: KbArticle, *, actor_id, now: datetime) -> KbLink:
    """Link ``record`` to ``article``, pinned to its published version. 409 when the
    article is not published or the record is linked to it already."""
    if article.status != "published" or article.published_version is None:
        raise KbRefused(409, "Only a published article is linked to a record.")
    exists = session.scalar(select(KbLink.id).where(KbLink.record_id == record.id,
                                                    KbLink.article_id == article.id))
    if exists is not None:
        raise KbRefused(409, "The record is linked to this article already.")
    row = KbLink(record_id=record.id, article_id=article.id, version=article.published_version,
                 created_by=actor_id, created_at=now)
    session.add(row)
    session.flush()
    _count(session, article.id, 1)
    audit(session, "records", record.id, "kb_linked", actor_id,
          {"article_id": [None, str(article.id)], "version": [None, row.version]})
    return row


def unlink(session, record, row: KbLink, *, actor_id) -> None:
    """Remove a record's link to an article."""
    session.delete(row)
    session.flush()
    _count(session, row.article_id, -1)
    audit(session, "records", record.id, "kb_unlinked", actor_id,
          {"article_id": [str(row.article_id), None], "version": [row.version, None]})


def _count(session, article_id, delta: int) -> None:
    # One UPDATE of the counter (set-based, no read): ``links`` is shown with the article,
    # so a link or unlink changes the article's ETag too.
    session.execute(update(KbArticle).where(KbArticle.id == article_id)
                    .values(links=KbArticle.links + delta).execution_options(synchronize_session=False))
