"""Chinese-aware phrase matching.

Phrases and texts are compared in a *normal form*: Unicode NFKC (so full-width ``！`` and
``Ａ`` equal half-width ``!`` and ``A``), case-folded, traditional characters folded to
simplified ones, with punctuation (``P*``), spaces (``Z*``) and control/format characters
(``Cc``, ``Cf``, e.g. zero-width spaces) removed within a sentence. So ``"喂！"``,
``"喂!"`` and ``"喂 ！"`` are the same phrase, ``"您好"`` is found in ``"您 好，我是……"``
and ``"再见"`` in ``"請稍等。再見"``. Letters, digits and symbols (``S*``: ``¥``, ``+``,
``<``) keep their meaning; note that Unicode counts ``%``, ``#`` and ``@`` as punctuation.

**Sentences.** A phrase is found within a sentence, never across the end of one: the
sentence-ending marks ``。！？!?；;`` (full or half width) and line breaks become a line
break (``"\n"``) in the normal form, which no phrase matches. So the forbidden ``"不知道"``
is not in ``"您看行不？知道您着急"``. :func:`normalise` gives a phrase's form: its
sentence ends made one ``"\n"`` each, none at either end (``"问别人去！"`` is
``"问别人去"``); a phrase of two sentences (``"喂！你好"``) matches two sentences however
their end is written (``"喂？！你好"``).

**Traditional and simplified.** Every character is folded with OpenCC's character tables
(the ``opencc`` package, the Open Chinese Convert project's own build): Hong Kong
variants (``hk2s``), then traditional and Taiwan variants to simplified (``tw2s``), so
``請``→``请``, ``見``→``见``, ``著``→``着``, ``裡``→``里``, ``衞``→``卫``. Character by
character, not phrase by phrase: both sides fold the same way wherever a character
stands, so a match never depends on how a converter segments the text, and an offset
still maps to one character of the original.

:class:`IndexedText` keeps, for every character of the normal form, the offset of the
character of the original text it came from, so a match is reported where it is in the
text the person wrote.
"""

from __future__ import annotations

import re
import threading
import unicodedata
from itertools import compress

_IGNORED = frozenset({"Pc", "Pd", "Ps", "Pe", "Pi", "Pf", "Po", "Zs", "Zl", "Zp", "Cc", "Cf"})
# Hangul vowel and trailing jamo compose with the character before them under NFKC.
_JOINING_RANGES = ((0x1160, 0x11FF), (0xD7B0, 0xD7FF), (0x314F, 0x318E), (0xFFC2, 0xFFDC))
#: What ends a sentence, after NFKC (which makes ！？； and ｡ of ! ? ; and 。).
SENTENCE_ENDS = frozenset("。!?;\n\r\x0b\x0c\x1c\x1d\x1e\x85\u2028\u2029")
#: A sentence end in the normal form (a control character: nothing else yields one).
BREAK = "\n"
#: Characters below this are never Chinese: they are not looked up in OpenCC's tables.
_CJK_START = 0x2E80


class _Folds(dict):
    """char -> its simplified form (OpenCC's character tables), computed on first sight."""

    _lock = threading.Lock()
    _converters: tuple | None = None

    def __missing__(self, ch: str) -> str:
        folded = ch
        if ord(ch) >= _CJK_START:
            for converter in self._load():
                folded = converter.convert(folded)
        if len(self) < 100_000:
            self[ch] = folded
        return folded

    @classmethod
    def _load(cls) -> tuple:
        # Loaded on the first Chinese character (about 0.1 s): most processes that never
        # judge Chinese text never pay for it.
        if cls._converters is None:
            with cls._lock:
                if cls._converters is None:
                    import opencc

                    cls._converters = (opencc.OpenCC("hk2s"), opencc.OpenCC("tw2s"))
        return cls._converters


_FOLD = _Folds().__getitem__


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
    """``form`` (after NFKC and case folding) without punctuation, spaces and invisible
    characters, each sentence end a :data:`BREAK`, each character folded to simplified."""
    return "".join(BREAK if c in SENTENCE_ENDS else "" if unicodedata.category(c) in _IGNORED
                   else _FOLD(c) for c in form)


def _joins(ch: str) -> bool:
    code = ord(ch)
    if any(low <= code <= high for low, high in _JOINING_RANGES):
        return True
    decomposed = unicodedata.normalize("NFKC", ch)
    return bool(decomposed) and unicodedata.category(decomposed[0]).startswith("M")


_FORM_OF = _Forms().__getitem__


_BREAKS = re.compile(BREAK + "+")


def normalise(text: str) -> str:
    """Return the normal form of ``text`` (see the module docstring): the form phrases
    are written in, its sentence ends one :data:`BREAK` each, none at either end."""
    return _BREAKS.sub(BREAK, _strip(unicodedata.normalize("NFKC", text).casefold())).strip(BREAK)


def normalise_part(text: str) -> str:
    """The normal form of a piece of a phrase (the text between a blank or a placeholder
    and the next): :func:`normalise` without stripping sentence ends at either end."""
    return _BREAKS.sub(BREAK, _strip(unicodedata.normalize("NFKC", text).casefold()))


def phrase_pattern(phrase: str) -> re.Pattern | None:
    """For a phrase (in normal form) of more than one sentence, the pattern that finds it
    whatever run of sentence ends separates them; ``None`` for a phrase of one sentence,
    found with ``str.find``."""
    if BREAK not in phrase:
        return None
    return re.compile((BREAK + "+").join(map(re.escape, phrase.split(BREAK))))


class IndexedText:
    """A text in normal form that maps matches back to offsets in the original text.

    ``normal`` keeps every sentence end of the text as a :data:`BREAK` (runs of them and
    those at either end included): ``normalise(text)`` is ``normal`` with each run made
    one and none at either end.
    """

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

    def find_all(self, phrase: str, pattern: re.Pattern | None = None) -> list[tuple[int, int]]:
        """Return the ``(start, end)`` spans in the original text where ``phrase`` occurs.

        ``phrase`` must already be in normal form (:func:`normalise`); ``pattern`` is its
        :func:`phrase_pattern` when known. Occurrences do not overlap, and never span the
        end of a sentence unless the phrase does. ``end`` is exclusive.
        """
        spans: list[tuple[int, int]] = []
        if BREAK in phrase:
            starts, ends = self._offsets()
            for match in (pattern or phrase_pattern(phrase)).finditer(self.normal):
                last = match.end() - 1
                spans.append((starts[match.start()], starts[last] + 1 if ends is None else ends[last]))
            return spans
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

    def find_pattern(self, pattern: re.Pattern) -> list[tuple[int, int]]:
        """Return the ``(start, end)`` spans in the original text of the matches of
        ``pattern`` (a pattern over the normal form, e.g. a phrase with a blank)."""
        spans: list[tuple[int, int]] = []
        starts = ends = None
        for match in pattern.finditer(self.normal):
            if match.end() == match.start():
                continue
            if starts is None:
                starts, ends = self._offsets()
            last = match.end() - 1
            spans.append((starts[match.start()], starts[last] + 1 if ends is None else ends[last]))
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
        form = _strip(unicodedata.normalize("NFKC", text[start:end]).casefold())
        if form:
            parts.append(form)
            starts.extend([start] * len(form))
            ends.extend([end] * len(form))
    return IndexedText(text, "".join(parts), None, tuple(starts), tuple(ends))
