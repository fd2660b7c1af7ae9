"""Articles suggested for a record, ranked.

A published article is a candidate when it applies to the record's kind (its
``applies_to`` names the kind, or is empty: any kind). Its score, in SQL:

- 3 when its product equals the record's ``data.product`` (or one of ``data.tags``),
- 2 when its category equals the record's ``data.category`` (or one of ``data.tags``),
- 1 per search token of the record's text (the string values of its data, normalised,
  Chinese as bigrams: :mod:`.search`) found in the article's search key, at most
  :data:`~.search.QUERY_TOKENS` tokens.

Articles scoring 0 are not suggested; the rest come best first (then by code).
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import and_, case, func, literal, or_, select

from servq.core.kb import search
from servq.core.models import KbArticle, KbArticleVersion

PRODUCT_POINTS = 3
CATEGORY_POINTS = 2


def _strings(value: Any, depth: int = 0):
    if isinstance(value, str):
        yield value
    elif depth < 3 and isinstance(value, dict):
        for item in value.values():
            yield from _strings(item, depth + 1)
    elif depth < 3 and isinstance(value, list):
        for item in value:
            yield from _strings(item, depth + 1)


def _labels(data: dict, name: str) -> list[str]:
    found = [data.get(name)] + (data.get("tags") if isinstance(data.get("tags"), list) else [])
    return sorted({str(v).strip().casefold() for v in found if isinstance(v, str) and v.strip()})


def suggestions(record):
    """``(score expression, SELECT of the candidate KbArticle rows best first)``."""
    data = record.data if isinstance(record.data, dict) else {}
    found = search.tokens(" ".join(_strings(data)))[:search.QUERY_TOKENS]
    products, categories = _labels(data, "product"), _labels(data, "category")
    version = KbArticleVersion
    score = (
        (case((func.lower(version.product).in_(products), PRODUCT_POINTS), else_=0) if products else literal(0))
        + (case((func.lower(version.category).in_(categories), CATEGORY_POINTS), else_=0)
           if categories else literal(0))
        + search.overlap(version.search_key, found))
    stmt = (select(KbArticle)
            .join(version, and_(version.article_id == KbArticle.id, version.version == KbArticle.published_version))
            .where(KbArticle.status == "published",
                   or_(version.kinds_key == " ",
                       version.kinds_key.like(f"% {search.escape(record.kind)} %", escape="\\")),
                   score > 0)
            .order_by(score.desc(), KbArticle.code, KbArticle.id))
    return score, stmt
