"""Article reviews as an obligation: an article whose review is overdue is a missed one.

A published article is due for review ``review_every_days`` (default 90) after it was
published or last reviewed (``review_due_at``). The breach watch's every-minute scan of a
tenant (:func:`servq.core.deadlines.watch.scan_tenant`) calls :func:`scan`: one SELECT
finds the published articles past their due instant whose owner has not been told of
this lapse (``review_notified_for`` differs from ``review_due_at``), one ``kb.review_due``
event each goes to the outbox (its dedupe key names the article and the due instant, so
a lapse is told once however often the scan runs), and one UPDATE marks them told. A
review (``POST /kb/articles/<id>/transitions {"action": "review"}``) moves the due instant
on, and the next lapse is told again.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import or_, select, update

from servq.core.models import KbArticle
from servq.core.notify.outbox import emit_many

EVENT = "kb.review_due"


def overdue(now: datetime):
    """The condition "published and past its review date" (stale), for queries."""
    return (KbArticle.status == "published") & (KbArticle.review_due_at <= now)


def scan(session, now: datetime) -> int:
    """Tell the owners of newly lapsed articles (see the module docstring); the number told."""
    rows = session.execute(
        select(KbArticle.id, KbArticle.code, KbArticle.owner_id, KbArticle.review_due_at,
               KbArticle.published_version)
        .where(overdue(now), or_(KbArticle.review_notified_for.is_(None),
                                 KbArticle.review_notified_for != KbArticle.review_due_at))
        .order_by(KbArticle.review_due_at, KbArticle.id)
        .limit(5000)).all()
    if not rows:
        return 0
    emit_many(session, [(EVENT, {"article_id": row.id, "code": row.code, "owner_id": row.owner_id,
                                 "version": row.published_version, "review_due_at": row.review_due_at},
                         ("manager",), f"{EVENT}:{row.id}:{row.review_due_at.isoformat()}")
                        for row in rows])
    session.execute(update(KbArticle).where(KbArticle.id.in_([row.id for row in rows]))
                    .values(review_notified_for=KbArticle.review_due_at)
                    .execution_options(synchronize_session=False))
    return len(rows)
