"""Chinese-aware search keys of knowledge-base articles.

A text becomes *tokens*: it is cut into words at spaces and punctuation, each word is put
in the phrase normaliser's form (:func:`servq.core.scoring.text.normalise`: NFKC, so
full-width ``Ａ`` is ``a``; case-folded; traditional characters folded to simplified, so
``漏水`` and ``漏水`` of ``衛生間漏水`` match), then a run of Chinese (CJK) characters gives
its character **bigrams** (``卫生间漏水`` → ``卫生 生间 间漏 漏水``; a lone character
stays itself) and a run of other letters and digits gives itself as a **word**.

An article version stores its tokens as one text column, ``search_key``, each token
between spaces (`` 卫生 生间 间漏 漏水 leak ``), so a search is SQL: every token of the
query must be in the key, a bigram or word as a whole token (``LIKE '% 漏水 %'``), a Latin
word also as the start of one (``leak`` finds ``leaking``), a lone Chinese character
anywhere. Plain ``LIKE`` works the same on SQLite and PostgreSQL; see
docs/knowledge-base.md for why no trigram index.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable

from sqlalchemy import and_, case, literal

from servq.core.scoring.text import normalise

_SPLIT = re.compile(r"[\W_]+")
#: Characters from here on that are letters of no case (``Lo``) count as CJK.
_CJK_START = 0x2E80
#: Longest Latin word kept (longer ones are cut: a key, not a dictionary).
_WORD_MAX = 40
#: Most tokens a query (or a record's text, for suggestions) contributes.
QUERY_TOKENS = 50


def _is_cjk(ch: str) -> bool:
    return ord(ch) >= _CJK_START and unicodedata.category(ch) == "Lo"


def _runs(word: str):
    start = 0
    for i in range(1, len(word) + 1):
        if i == len(word) or _is_cjk(word[i]) != _is_cjk(word[start]):
            yield word[start:i], _is_cjk(word[start])
            start = i


def tokens(text: str) -> list[str]:
    """The search tokens of ``text``, each once, in order of first appearance."""
    seen: dict[str, None] = {}
    for raw in _SPLIT.split(text or ""):
        word = normalise(raw).replace("\n", "")
        if not word:
            continue
        for run, cjk in _runs(word):
            if cjk:
                if len(run) == 1:
                    seen.setdefault(run)
                for i in range(len(run) - 1):
                    seen.setdefault(run[i:i + 2])
            else:
                seen.setdefault(run[:_WORD_MAX])
    return list(seen)


def key(texts: Iterable[str]) -> str:
    """The ``search_key`` of some texts: their tokens, each between spaces."""
    seen: dict[str, None] = {}
    for text in texts:
        for token in tokens(text):
            seen.setdefault(token)
    return " " + " ".join(seen) + " " if seen else " "


def escape(token: str) -> str:
    """``token`` for a ``LIKE`` pattern with ``ESCAPE '\\'``: ``%``, ``_`` and ``\\`` as themselves."""
    return token.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def token_condition(column, token: str):
    """The SQL condition "``token`` is in the key ``column``" (see the module docstring)."""
    escaped = escape(token)
    if len(token) == 1 and _is_cjk(token):
        pattern = f"%{escaped}%"
    elif _is_cjk(token[0]):
        pattern = f"% {escaped} %"
    else:
        pattern = f"% {escaped}%"
    return column.like(pattern, escape="\\")


def matches(column, query: str):
    """The SQL condition "every token of ``query`` is in ``column``"; ``None`` when the
    query has no token (nothing but punctuation)."""
    found = tokens(query)[:QUERY_TOKENS]
    if not found:
        return None
    return and_(*(token_condition(column, token) for token in found))


def overlap(column, found: list[str]):
    """The SQL number of ``found`` tokens in ``column`` (a rank of likeness)."""
    if not found:
        return literal(0)
    total = None
    for token in found[:QUERY_TOKENS]:
        term = case((token_condition(column, token), 1), else_=0)
        total = term if total is None else total + term
    return total
