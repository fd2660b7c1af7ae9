"""Articles suggested for a record, ranked.

A published article is a candidate when it applies to the record's kind (its
``applies_to`` names the kind, or is empty: any kind). Its score, in SQL:

- 3 when its product equals the record's product, ignoring case: the values of the
  kind's ``kb_product`` paths, by default ``data.product`` (or one of ``data.tags``),
- 2 when its category equals the record's category: the kind's ``kb_category`` paths, by
  default ``data.category`` (or one of ``data.tags``),
- 1 per search token of the record's text found in the article's search key, at most
  :data:`~.search.QUERY_TOKENS` tokens: the strings of the kind's ``kb_text`` paths in
  their order, by default every string of its data but its ``personal`` paths (normalised,
  Chinese as bigrams: :mod:`.search`).

Articles scoring 0 are not suggested; the rest come best first (then by code).
:func:`suggest` gives the best few of them at once (a plugin telling an agent about a new
record, through the plugin surface's ``kb_suggest``).
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


def _value(data: Any, path: str) -> Any:
    for key in path.split("."):
        data = data.get(key) if isinstance(data, dict) else None
    return data


def _without(data: dict, paths: tuple[str, ...]) -> dict:
    """``data`` without the values at ``paths`` (copies only what it changes)."""
    if not paths:
        return data
    out = dict(data)
    for path in paths:
        head, _, rest = path.partition(".")
        if not rest:
            out.pop(head, None)
        elif isinstance(out.get(head), dict):
            out[head] = _without(out[head], (rest,))
    return out


def _labels(data: dict, paths: tuple[str, ...], default: str) -> list[str]:
    if paths:
        found = [_value(data, path) for path in paths]
    else:
        found = [data.get(default)] + (data.get("tags") if isinstance(data.get("tags"), list) else [])
    return sorted({str(v).strip().casefold() for v in found if isinstance(v, str) and v.strip()})


def _text(data: dict, kind) -> str:
    if kind is not None and kind.kb_text:
        return " ".join(text for path in kind.kb_text for text in _strings(_value(data, path)))
    return " ".join(_strings(_without(data, tuple(kind.personal) if kind is not None else ())))


def suggestions(record, kind=None):
    """``(score expression, SELECT of the candidate KbArticle rows best first)``.

    ``kind``: the record's :class:`~servq.core.plugins.RecordKind`, whose ``kb_text``,
    ``kb_product`` and ``kb_category`` say which fields of ``data`` count (see the module
    docstring); ``None``: the defaults."""
    data = record.data if isinstance(record.data, dict) else {}
    found = search.tokens(_text(data, kind))[:search.QUERY_TOKENS]
    products = _labels(data, tuple(kind.kb_product) if kind is not None else (), "product")
    categories = _labels(data, tuple(kind.kb_category) if kind is not None else (), "category")
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


def suggest(session, record, kind=None, limit: int = 3) -> list[dict[str, Any]]:
    """The best ``limit`` suggestions for ``record``, each ``{id, code, title, product,
    category, score}`` (the published version's title and tags), best first; one query."""
    score, stmt = suggestions(record, kind)
    version = KbArticleVersion
    rows = session.execute(stmt.with_only_columns(
        KbArticle.id, KbArticle.code, version.title, version.product, version.category, score)
        .limit(max(0, int(limit)))).all()
    return [{"id": row[0], "code": row[1], "title": row[2], "product": row[3], "category": row[4],
             "score": int(row[5])} for row in rows]
