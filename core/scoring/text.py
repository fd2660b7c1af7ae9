"""Chinese-aware phrase matching.

Phrases and texts are compared in a *normal form*: Unicode NFKC (so full-width ``！`` and
``Ａ`` equal half-width ``!`` and ``A``), case-folded, with punctuation (``P*``), spaces
(``Z*``) and control/format characters (``Cc``, ``Cf``, e.g. zero-width spaces) removed.
So ``"喂！"``, ``"喂!"`` and ``"喂 ！"`` are the same phrase, and ``"您好"`` is found in
``"您 好，我是……"``. Letters, digits and symbols (``S*``: ``¥``, ``+``, ``<``) keep their
meaning; note that Unicode counts ``%``, ``#`` and ``@`` as punctuation.

:class:`IndexedText` keeps, for every character of the normal form, the offset of the
character of the original text it came from, so a match is reported where it is in the
text the person wrote.
"""

from __future__ import annotations

import unicodedata
from itertools import compress

_IGNORED = frozenset({"Pc", "Pd", "Ps", "Pe", "Pi", "Pf", "Po", "Zs", "Zl", "Zp", "Cc", "Cf"})
# Hangul vowel and trailing jamo compose with the character before them under NFKC.
_JOINING_RANGES = ((0x1160, 0x11FF), (0xD7B0, 0xD7FF), (0x314F, 0x318E), (0xFFC2, 0xFFDC))


class _Forms(dict):
    """char -> its normal form ("" when ignored), computed on first sight.

    ``None`` marks a char that may compose with its neighbour, which sends the whole text
    through the slower, cluster-wise path.
    """

    def __missing__(self, ch: str) -> str | None:
        form = None if _joins(ch) else _strip(unicodedata.normalize("NFKC", ch).casefold())
        if len(self) < 100_000:  # bounded: a text can hold any of ~1.1M code points
            self[ch] = form
        return form


def _strip(form: str) -> str:
    return "".join(c for c in form if unicodedata.category(c) not in _IGNORED)


def _joins(ch: str) -> bool:
    code = ord(ch)
    if any(low <= code <= high for low, high in _JOINING_RANGES):
        return True
    decomposed = unicodedata.normalize("NFKC", ch)
    return bool(decomposed) and unicodedata.category(decomposed[0]).startswith("M")


_FORM_OF = _Forms().__getitem__


def normalise(text: str) -> str:
    """Return the normal form of ``text`` (see the module docstring)."""
    return _strip(unicodedata.normalize("NFKC", text).casefold())


class IndexedText:
    """A text in normal form that maps matches back to offsets in the original text."""

    __slots__ = ("original", "normal", "_forms", "_starts", "_ends")

    def __init__(self, original: str, normal: str, forms: list[str] | None = None,
                 starts: tuple[int, ...] | None = None, ends: tuple[int, ...] | None = None):
        self.original = original
        self.normal = normal
        # Offsets are worked out only when a phrase is found: most evaluations of a
        # forbidden phrase find nothing and never need them.
        self._forms = forms
        self._starts = starts
        self._ends = ends

    def _offsets(self) -> tuple[tuple[int, ...], tuple[int, ...] | None]:
        if self._starts is None:
            forms = self._forms
            starts = tuple(compress(range(len(forms)), forms))
            if len(starts) == len(self.normal):
                self._starts = starts
            else:  # some char has a one-to-many form ("㎡" -> "m2")
                expanded: list[int] = []
                ends: list[int] = []
                for offset, form in enumerate(forms):
                    expanded.extend([offset] * len(form))
                    ends.extend([offset + 1] * len(form))
                self._starts, self._ends = tuple(expanded), tuple(ends)
        return self._starts, self._ends

    def find_all(self, phrase: str) -> list[tuple[int, int]]:
        """Return the ``(start, end)`` spans in the original text where ``phrase`` occurs.

        ``phrase`` must already be in normal form (:func:`normalise`); occurrences do not
        overlap. ``end`` is exclusive.
        """
        spans: list[tuple[int, int]] = []
        position = self.normal.find(phrase) if phrase else -1
        if position == -1:
            return spans
        starts, ends = self._offsets()
        while position != -1:
            last = position + len(phrase) - 1
            end = starts[last] + 1 if ends is None else ends[last]
            spans.append((starts[position], end))
            position = self.normal.find(phrase, position + len(phrase))
        return spans

    def __repr__(self) -> str:
        return f"IndexedText({self.original!r} -> {self.normal!r})"


def index(text: str) -> IndexedText:
    """Return ``text`` in normal form, indexed back to its original offsets."""
    # The common case runs at C speed: each char through the cache of forms. A char that
    # may compose with its neighbour has no form (None) and the join fails.
    forms = list(map(_FORM_OF, text))
    try:
        return IndexedText(text, "".join(forms), forms)
    except TypeError:
        return _index_clusters(text)


def _index_clusters(text: str) -> IndexedText:
    """The slow path: normalise clusters (a character plus the ones that join it) whole."""
    clusters: list[tuple[int, int]] = []
    for offset, ch in enumerate(text):
        if clusters and _joins(ch):
            clusters[-1] = (clusters[-1][0], offset + 1)
        else:
            clusters.append((offset, offset + 1))
    parts: list[str] = []
    starts: list[int] = []
    ends: list[int] = []
    for start, end in clusters:
        form = normalise(text[start:end])
        if form:
            parts.append(form)
            starts.extend([start] * len(form))
            ends.extend([end] * len(form))
    return IndexedText(text, "".join(parts), None, tuple(starts), tuple(ends))
