"""The ``phrases`` rule: required and forbidden phrases in a text or a transcript.

Parameters (all but one of ``required``/``forbidden`` optional)::

    field = "transcript[speaker=agent]"   # a text, or a list of turns of one speaker
    turn = "first"                        # "first", "last" or "any" (default) selected turn
    required = [["您好", "你好"], "请问", "我是<company>的"]   # a list = any one of them
    forbidden = ["问别人去", "@taboo", "@taboo.impatient"]      # "@lib[.kind]": a library

- **Texts and transcripts.** The value at ``field`` is a text, or a transcript: a list
  of turns ``{"speaker": "agent", "text": "..."}``. ``field = "<path>[speaker=agent]"``
  (``[speaker=agent|staff]`` for several) keeps only that speaker's turns; ``turn``
  picks the first or last of the turns kept (``any``: all of them). No turn kept: n.a.
- **Any-of groups.** A required entry that is a list is met when any of its phrases is
  found (the first found, in order, is reported).
- **Placeholders.** ``<name>`` is filled at scoring time from the context's placeholder
  values (tenant and plugin settings, see ``core.evaluation.placeholders``). A phrase
  whose placeholder has no value makes the item n.a., with the names in
  ``evidence.unfilled`` and a ``note``: nothing is judged against an unfinished phrase.
- **Blanks.** A run of two or more underscores (``____``, as in the seeds' forms) stands
  for 1 to :data:`BLANK_GAP` characters of one sentence (punctuation and spaces not
  counted): ``"我是____快递公司的"`` is met by ``"我是迅达快递公司的"``.
- **Libraries.** ``"@taboo"`` forbids every phrase of a library shipped in
  ``core/scoring/library/<name>.toml``; ``"@taboo.impatient"`` one kind of it. Library
  phrases are reported only when found, with ``library`` and ``library_kind``.

Evidence: ``{"phrases": [...]}``, one entry per required entry and per forbidden phrase
written out (library phrases only when found), each ``phrase``, ``kind``
(required/forbidden), ``found``, ``at`` and ``matched`` (start offsets and the words as
written) and, when found, ``matches``: ``{"phrase", "text", "start", "end", "turn"}`` each
(``turn`` the index in the whole transcript, ``None`` for a plain text; ``start``/``end``
offsets in that turn's original text, so ``text[start:end]`` is what was said).
"""

from __future__ import annotations

import re
import tomllib
from bisect import bisect_right
from functools import lru_cache
from importlib import resources
from typing import Any, Mapping

from marshmallow import Schema, ValidationError, fields, validate, validates_schema

from servq.core.scoring import rules
from servq.core.scoring.rules import FrozenEvidence, RuleInputError, RuleResult, TextEvidence
from servq.core.scoring.text import (BREAK, IndexedText, index, normalise, normalise_part,
                                     phrase_pattern)

#: The most characters a blank (``____``) stands for.
BLANK_GAP = 20
_NAME = r"[A-Za-z][A-Za-z0-9_]*(?:\.[A-Za-z][A-Za-z0-9_]*)*"
_TOKEN = re.compile(rf"<(?P<name>{_NAME})>|(?P<blank>[_＿]{{2,}})")
_FIELD = re.compile(r"^(?P<path>[^\[\]\s]+?)(?:\[speaker=(?P<speakers>[^\[\]=]+)\])?$")
_LIBRARY_REF = re.compile(r"^@(?P<library>[a-z][a-z0-9_]*)(?:\.(?P<kind>[a-z][a-z0-9_]*))?$")
TURNS = ("first", "last", "any")
#: What separates the turns of a view in its joined normal form: a control character, so
#: in no normal form (of a text or of a phrase), and no blank (``[^...]``) crosses it.
_SEPARATOR = "\x00"
_SEPARATOR_CLASS = "\\x00"


# -- libraries ------------------------------------------------------------------------

@lru_cache(maxsize=1)
def libraries() -> dict[str, dict]:
    """The phrase libraries shipped in ``core/scoring/library/*.toml``, by name."""
    found = {}
    for entry in sorted(resources.files("servq.core.scoring").joinpath("library").iterdir(),
                        key=lambda e: e.name):
        if entry.name.endswith(".toml"):
            found[entry.name[:-5]] = tomllib.loads(entry.read_text(encoding="utf-8"))
    return found


def library_phrases(reference: str) -> list[tuple[str, str, str]]:
    """``(phrase, library, kind)`` of a reference ``"@lib"`` or ``"@lib.kind"``.

    :raises ValueError: naming the unknown library or kind.
    """
    match = _LIBRARY_REF.match(reference)
    if match is None:
        raise ValueError(f"{reference!r} is not a library reference ('@name' or '@name.kind')")
    name, kind = match["library"], match["kind"]
    library = libraries().get(name)
    if library is None:
        raise ValueError(f"no phrase library {name!r} (known: {', '.join(sorted(libraries()))})")
    kinds = library.get("kinds", {})
    if kind is not None and kind not in kinds:
        raise ValueError(f"library {name!r} has no kind {kind!r} (kinds: {', '.join(kinds)})")
    return [(phrase, name, k) for k, spec in kinds.items() if kind in (None, k)
            for phrase in spec["phrases"]]


# -- phrases --------------------------------------------------------------------------

class Phrase:
    """One phrase as written, parsed into text, blanks and placeholders."""

    __slots__ = ("written", "parts", "names", "form", "pattern", "library", "library_kind", "_cache")

    def __init__(self, written: str, library: str | None = None, library_kind: str | None = None):
        self.written, self.library, self.library_kind = written, library, library_kind
        parts: list[tuple[str, str]] = []
        position = 0
        for token in _TOKEN.finditer(written):
            parts.append(("text", normalise_part(written[position:token.start()])))
            parts.append(("blank", "") if token["blank"] else ("name", token["name"]))
            position = token.end()
        parts.append(("text", normalise_part(written[position:])))
        parts = [part for part in parts if part != ("text", "")]
        if parts and parts[0][0] == "text":
            parts[0] = ("text", parts[0][1].lstrip(BREAK))
        if parts and parts[-1][0] == "text":
            parts[-1] = ("text", parts[-1][1].rstrip(BREAK))
        self.parts = tuple(part for part in parts if part != ("text", ""))
        self.names = tuple(dict.fromkeys(value for kind, value in self.parts if kind == "name"))
        if not any(kind != "blank" for kind, _ in self.parts):
            raise ValueError(f"a phrase of nothing but punctuation, spaces or blanks: {written!r}")
        self.form = self.pattern = None
        self._cache: dict[tuple, re.Pattern | None] = {}
        if all(kind == "text" for kind, _ in self.parts):
            self.form = normalise(written)
            self.pattern = phrase_pattern(self.form)
        elif not self.names:
            self.pattern = self._regex({})

    def _regex(self, values: Mapping[str, str]) -> re.Pattern:
        pieces = []
        for kind, value in self.parts:
            if kind == "blank":
                # Not across a sentence end, nor (in a view's joined text) into another turn.
                pieces.append(f"[^{BREAK}{_SEPARATOR_CLASS}]{{1,{BLANK_GAP}}}?")
                continue
            text = value if kind == "text" else normalise(values[value])
            pieces.append((BREAK + "+").join(map(re.escape, text.split(BREAK))))
        return re.compile("".join(pieces))

    def search(self, values: Mapping[str, str]) -> tuple[str | None, re.Pattern | None]:
        """How to look for this phrase in a normal form with these placeholder values:
        ``(literal, None)`` (``str.find``) or ``(None, pattern)``."""
        if self.form is not None and self.pattern is None:
            return self.form, None
        return None, self._filled(values)

    def _filled(self, values: Mapping[str, str]) -> re.Pattern:
        """This phrase's pattern with these placeholder values (compiled once per set of
        values, up to 64 kept)."""
        if not self.names:
            return self.pattern
        key = tuple(values.get(name) for name in self.names)
        pattern = self._cache.get(key)
        if pattern is None:
            pattern = self._regex(values)
            if len(self._cache) < 64:
                self._cache[key] = pattern
        return pattern

    def unfilled(self, values: Mapping[str, str]) -> list[str]:
        """The placeholders of this phrase with no value (or a value of no words)."""
        return [name for name in self.names if not normalise(str(values.get(name) or ""))]

    def spans(self, indexed: IndexedText, values: Mapping[str, str]) -> list[tuple[int, int]]:
        """Where this phrase is in ``indexed`` (offsets of the original text)."""
        if self.form is not None:
            normal = indexed.normal
            if (self.form in normal) if self.pattern is None else self.pattern.search(normal):
                return indexed.find_all(self.form, self.pattern)
            return []
        return indexed.find_pattern(self._filled(values))


def parse_field(field: str) -> tuple[str, tuple[str, ...] | None]:
    """``"transcript[speaker=agent|staff]"`` -> ``("transcript", ("agent", "staff"))``;
    a plain field -> ``(field, None)``. :raises ValueError: on a bad selector."""
    match = _FIELD.match(field)
    if match is None:
        raise ValueError(f"{field!r}: write a field name or '<field>[speaker=<name>]' "
                         "(several speakers: '[speaker=agent|staff]')")
    speakers = match["speakers"]
    if speakers is None:
        return match["path"], None
    names = tuple(name.strip() for name in speakers.split("|"))
    if not all(names):
        raise ValueError(f"{field!r}: an empty speaker name")
    return match["path"], names


# -- the schema -----------------------------------------------------------------------

def _check_required(entry: Any) -> None:
    if isinstance(entry, str):
        return
    if not isinstance(entry, list):
        raise ValidationError("a phrase, or a list of phrases any one of which is enough")
    if not entry:
        raise ValidationError("an empty group of alternatives: give at least one phrase")
    if not all(isinstance(alternative, str) for alternative in entry):
        raise ValidationError("a group of alternatives holds phrases (texts) only")


def _check_field(field: str) -> None:
    try:
        parse_field(field)
    except ValueError as error:
        raise ValidationError(str(error)) from error


class PhrasesParams(Schema):
    """``phrases``: the text (or the turns) at ``field`` holds every ``required`` entry
    and no ``forbidden`` phrase; see :mod:`core.scoring.phrases`."""

    field = fields.String(validate=[validate.Length(min=1, max=200), _check_field])
    turn = fields.String(validate=validate.OneOf(TURNS))
    required = fields.List(fields.Raw(validate=_check_required), load_default=list)
    forbidden = fields.List(fields.String(), load_default=list)

    @validates_schema
    def _phrases(self, data, **kwargs):
        required, forbidden = data.get("required", []), data.get("forbidden", [])
        if not required and not forbidden:
            raise ValidationError("give at least one required or forbidden phrase")
        problems: dict[str, dict[int, list[str]]] = {}
        for key, entries in (("required", required), ("forbidden", forbidden)):
            for n, entry in enumerate(entries):
                for phrase in (entry if isinstance(entry, list) else [entry]):
                    if not isinstance(phrase, str):
                        continue
                    try:
                        if phrase.startswith("@"):
                            if key == "required":
                                raise ValueError(f"{phrase!r}: a library is forbidden, never "
                                                 "required (put it in forbidden)")
                            library_phrases(phrase)
                        else:
                            Phrase(phrase)
                    except ValueError as error:
                        problems.setdefault(key, {}).setdefault(n, []).append(str(error))
        if problems:
            raise ValidationError(problems)


# -- compiling ------------------------------------------------------------------------

def _reader(name: str):
    keys = name.split(".")

    def read(values: Mapping[str, Any]) -> Any:
        if name in values:
            return values[name]
        for key in keys:
            if not isinstance(values, Mapping):
                return None
            values = values.get(key)
        return values

    return read


def compile_phrases(params: Mapping[str, Any], code: str):
    """The evaluator of a ``phrases`` rule (see the module docstring).

    Everything that does not depend on the record is worked out here or once per set of
    placeholder values (:class:`_Plan`); per record, the turns at ``field`` are validated
    once and each selection of them (speakers, turn) normalised and joined once, shared by
    every item of the record that reads it (:func:`_view`). A forbidden list is one search
    of one combined pattern over the joined turns: phrase by phrase only when it finds one.
    """
    field = params.get("field", code)
    path, speakers = parse_field(field)
    turn = params.get("turn", "any")
    required = [[Phrase(p) for p in (entry if isinstance(entry, list) else [entry])]
                for entry in params.get("required", ())]
    forbidden = [Phrase(p, library, kind) for entry in params.get("forbidden", ())
                 for p, library, kind in (library_phrases(entry) if entry.startswith("@")
                                          else [(entry, None, None)])]
    written = [entry for entry in params.get("required", ())]
    names = tuple(dict.fromkeys(name for group in required for p in group for name in p.names))
    names += tuple(n for p in forbidden for n in p.names if n not in names)
    read = _reader(path)
    simple = (speakers is None and turn == "any" and not names
              and all(len(group) == 1 and isinstance(entry, str) and group[0].form is not None
                      for group, entry in zip(required, written))
              and all(p.form is not None and p.library is None for p in forbidden))
    if simple:
        # Plain phrases in a plain text: the matcher tuned for it (one pass per phrase).
        matcher = rules.PhraseMatcher([g[0].written for g in required], [p.written for p in forbidden])
    absent = [FrozenEvidence({"phrase": entry, "kind": "required", "found": False, "at": (),
                              "matched": ()}) for entry in written]
    absent_forbidden = [FrozenEvidence({"phrase": p.written, "kind": "forbidden", "found": False,
                                        "at": (), "matched": ()}) for p in forbidden]
    # Nothing forbidden found: the evidence lists the phrases written out, as absent.
    none_forbidden = [missing for p, missing in zip(forbidden, absent_forbidden) if p.library is None]
    plans: dict[tuple, _Plan] = {}
    fixed = _Plan(required, written, absent, forbidden, absent_forbidden, {}) if not names else None
    selection = (path, speakers, turn)

    def plan_for(filled: Mapping[str, Any]) -> _Plan:
        try:
            key = tuple(filled.get(name) for name in names)
            plan = plans.get(key)
        except TypeError:  # an unhashable value: worked out each time
            key = plan = None
        if plan is None:
            unfilled = [name for name in names if not normalise(str(filled.get(name) or ""))]
            if unfilled:
                plan = _Plan.unfinished(unfilled)
            else:
                plan = _Plan(required, written, absent, forbidden, absent_forbidden, filled)
            if key is not None:
                if len(plans) >= 64:  # many tenants' values: start again
                    plans.clear()
                plans[key] = plan
        return plan

    def evaluate(values, context):
        value = read(values)
        if value is None:
            return RuleResult(rules.NA, TextEvidence(text=None))
        if simple and value.__class__ is str:
            indexed = context.texts.get(path)
            if indexed is None or indexed.original is not value:
                indexed = context.texts[path] = index(value)
            return matcher.judge(value, indexed)
        view = _view(value, selection, context.texts)
        if view is None:
            return RuleResult(rules.NA, TextEvidence(turns=[], speakers=list(speakers or ()), turn=turn))
        plan = fixed or plan_for(context.placeholders)
        if plan.unfilled is not None:
            return RuleResult(rules.NA, TextEvidence(unfilled=list(plan.unfilled), note=plan.note))
        ok, found = True, []
        for group, missing in plan.required:
            for entry, phrase, literal, pattern in group:
                matches = view.matches(phrase, literal, pattern)
                if matches:
                    found.append(_found(entry, "required", matches))
                    break
            else:
                ok = False
                found.append(missing)
        if plan.forbidden:
            if plan.any_forbidden.search(view.joined) is None:
                found += none_forbidden
            else:
                for phrase, literal, pattern, missing in plan.forbidden:
                    matches = view.matches(phrase.written, literal, pattern)
                    if matches:
                        ok = False
                        hit = _found(phrase.written, "forbidden", matches)
                        if phrase.library:
                            hit["library"], hit["library_kind"] = phrase.library, phrase.library_kind
                        found.append(hit)
                    elif phrase.library is None:
                        found.append(missing)
        evidence = TextEvidence(phrases=found)  # texts and offsets: no float
        if view.numbers[0] is not None:
            evidence["turns"] = list(view.numbers)
        return rules.new_result((rules.PASS if ok else rules.FAIL, evidence, None))

    return evaluate


class _Plan:
    """An item's phrases ready to look for with one set of placeholder values (or, in
    ``unfilled``, the placeholders that have none)."""

    __slots__ = ("required", "forbidden", "any_forbidden", "unfilled", "note")

    def __init__(self, required, written, absent, forbidden, absent_forbidden, filled):
        self.unfilled = self.note = None
        # ((entry as written, phrase as written, literal, pattern) per alternative, absent evidence)
        self.required = [(tuple((entry, phrase.written, *phrase.search(filled)) for phrase in group), missing)
                         for group, entry, missing in zip(required, written, absent)]
        self.forbidden = [(phrase, *phrase.search(filled), missing)
                          for phrase, missing in zip(forbidden, absent_forbidden)]
        # One pattern that finds any forbidden phrase: found where one of them is found,
        # since no phrase spans the separator of two turns.
        self.any_forbidden = re.compile("|".join(
            f"(?:{re.escape(literal) if pattern is None else pattern.pattern})"
            for _, literal, pattern, _ in self.forbidden)) if self.forbidden else None

    @classmethod
    def unfinished(cls, unfilled: list[str]) -> "_Plan":
        plan = cls.__new__(cls)
        plan.required = plan.forbidden = plan.any_forbidden = None
        plan.unfilled = tuple(unfilled)
        plan.note = ("no value for " + ", ".join(f"<{n}>" for n in unfilled)
                     + ": set it in the tenant's or the plugin's settings")
        return plan


class _View:
    """The turns an item judges (``numbers``: their index in the transcript, ``None`` for
    a plain text), normalised and joined by :data:`_SEPARATOR` into ``joined``; matches
    are mapped back to offsets in each turn's original text."""

    __slots__ = ("numbers", "texts", "indexed", "joined", "bases")

    def __init__(self, numbers: tuple, texts: tuple, indexed: tuple):
        self.numbers, self.texts, self.indexed = numbers, texts, indexed
        if len(indexed) == 1:
            self.joined, self.bases = indexed[0].normal, None
        else:
            self.joined = _SEPARATOR.join([ix.normal for ix in indexed])
            bases, base = [], 0
            for ix in indexed:
                bases.append(base)
                base += len(ix.normal) + 1
            self.bases = bases

    def matches(self, phrase: Any, literal: str | None, pattern: re.Pattern | None) -> list[dict]:
        """The matches of a phrase (``literal`` or ``pattern``, see :meth:`Phrase.search`)
        turn by turn, each ``{"phrase", "text", "start", "end", "turn"}``: the
        non-overlapping occurrences in each turn, as :meth:`Phrase.spans` finds them."""
        joined = self.joined
        if literal is not None:
            position = joined.find(literal)
            if position == -1:
                return []
            size = len(literal)
            spans = []
            while position != -1:
                spans.append((position, position + size))
                position = joined.find(literal, position + size)
        else:
            spans = [(m.start(), m.end()) for m in pattern.finditer(joined) if m.end() != m.start()]
            if not spans:
                return []
        found = []
        bases = self.bases
        for begin, finish in spans:
            k = 0 if bases is None else bisect_right(bases, begin) - 1
            base = 0 if bases is None else bases[k]
            starts, ends = self.indexed[k]._offsets()
            last = finish - 1 - base
            start = starts[begin - base]
            end = starts[last] + 1 if ends is None else ends[last]
            found.append({"phrase": phrase, "text": self.texts[k][start:end], "start": start,
                          "end": end, "turn": self.numbers[k]})
        return found


def _view(value: Any, selection: tuple, cache: dict) -> _View | None:
    """The :class:`_View` of ``selection`` (``(path, speakers, turn)``) of the value at
    ``path``, ``None`` when no turn is kept; made once per evaluation (``cache``: the
    context's ``texts``, where each turn's :class:`IndexedText` is kept by
    ``"path[number]"`` as before and the views and validated turns by tuples)."""
    hit = cache.get(selection)
    if hit is not None and hit[0] is value:
        return hit[1]
    path, speakers, turn = selection
    if value.__class__ is str or isinstance(value, str):
        if speakers is not None:
            raise RuleInputError("a speaker is selected but the field holds a plain text, "
                                 "not a list of turns")
        kept = [(None, value)]
    else:
        key = (path, speakers)  # (value, [(number, text)] of those speakers)
        hit = cache.get(key)
        if hit is None or hit[0] is not value:
            whole = cache.get((path,))  # (value, [(number, speaker, text)]): validated once
            if whole is None or whole[0] is not value:
                whole = cache[(path,)] = (value, _entries(value))
            hit = cache[key] = (value, [(number, text) for number, speaker, text in whole[1]
                                        if speakers is None or speaker in speakers])
        kept = hit[1]
        if turn == "first":
            kept = kept[:1]
        elif turn == "last":
            kept = kept[-1:]
    if not kept:
        view = None
    else:
        indexed = []
        for number, text in kept:
            key = path if number is None else f"{path}[{number}]"
            ix = cache.get(key)
            if ix is None or (ix.original is not text and ix.original != text):
                ix = cache[key] = _indexed(text)
            indexed.append(ix)
        numbers, texts = zip(*kept)
        view = _View(numbers, texts, tuple(indexed))
    cache[selection] = (value, view)
    return view


#: Texts indexed lately, by content: the scripted lines of calls (greetings, closings)
#: come again and again. Bounded: short texts only, emptied when full.
_INDEXED: dict[str, IndexedText] = {}
_INDEXED_MAX, _INDEXED_LENGTH = 2048, 200


def _indexed(text: str) -> IndexedText:
    """:func:`index` of ``text``, kept by content (an :class:`IndexedText` depends on the
    characters only; its ``original`` may be another string of them)."""
    ix = _INDEXED.get(text)
    if ix is None:
        ix = index(text)
        if len(text) <= _INDEXED_LENGTH:
            if len(_INDEXED) >= _INDEXED_MAX:
                _INDEXED.clear()
            _INDEXED[text] = ix
    return ix


def _entries(value: Any) -> list[tuple[int, Any, str]]:
    """``(index, speaker, text)`` of every turn of a transcript (a text of ``None`` is
    ``""``). :raises RuleInputError: when ``value`` is no list of turns."""
    if not isinstance(value, list):
        raise RuleInputError(f"phrases are looked for in a text or a list of turns, not {value!r}")
    entries = []
    for number, entry in enumerate(value):
        # Exact class checks first: the ABC checks cost most of this loop.
        if entry.__class__ is dict or isinstance(entry, Mapping):
            text = entry.get("text")
            if text.__class__ is str or text is None or isinstance(text, str):
                entries.append((number, entry.get("speaker"), text or ""))
                continue
        raise RuleInputError(f"turn {number}: a turn is {{\"speaker\": ..., \"text\": \"...\"}}, "
                             f"not {entry!r}")
    return entries


def _found(phrase: Any, kind: str, matches: list[dict]) -> dict:
    return {"phrase": phrase, "kind": kind, "found": True,
            "at": [m["start"] for m in matches], "matched": [m["text"] for m in matches],
            "matches": matches}


def placeholder_names(params: Mapping[str, Any]) -> tuple[str, ...]:
    """The placeholders a ``phrases`` rule's phrases use (to know whether a standard needs
    placeholder values)."""
    entries = [p for entry in params.get("required", ()) for p in
               (entry if isinstance(entry, list) else [entry])]
    entries += [p for p in params.get("forbidden", ()) if not p.startswith("@")]
    return tuple(dict.fromkeys(m["name"] for p in entries for m in _TOKEN.finditer(p) if m["name"]))
