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
from functools import lru_cache
from importlib import resources
from typing import Any, Mapping

from marshmallow import Schema, ValidationError, fields, validate, validates_schema

from servq.core.scoring import rules
from servq.core.scoring.rules import FrozenEvidence, RuleInputError, RuleResult
from servq.core.scoring.text import (BREAK, IndexedText, index, normalise, normalise_part,
                                     phrase_pattern)

#: The most characters a blank (``____``) stands for.
BLANK_GAP = 20
_NAME = r"[A-Za-z][A-Za-z0-9_]*(?:\.[A-Za-z][A-Za-z0-9_]*)*"
_TOKEN = re.compile(rf"<(?P<name>{_NAME})>|(?P<blank>[_＿]{{2,}})")
_FIELD = re.compile(r"^(?P<path>[^\[\]\s]+?)(?:\[speaker=(?P<speakers>[^\[\]=]+)\])?$")
_LIBRARY_REF = re.compile(r"^@(?P<library>[a-z][a-z0-9_]*)(?:\.(?P<kind>[a-z][a-z0-9_]*))?$")
TURNS = ("first", "last", "any")


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
                pieces.append(f"[^{BREAK}]{{1,{BLANK_GAP}}}?")
                continue
            text = value if kind == "text" else normalise(values[value])
            pieces.append((BREAK + "+").join(map(re.escape, text.split(BREAK))))
        return re.compile("".join(pieces))

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
        pattern = self.pattern
        if self.names:
            key = tuple(values.get(name) for name in self.names)
            pattern = self._cache.get(key)
            if pattern is None:
                pattern = self._regex(values)
                if len(self._cache) < 64:
                    self._cache[key] = pattern
        return indexed.find_pattern(pattern)


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
    """The evaluator of a ``phrases`` rule (see the module docstring)."""
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

    def evaluate(values, context):
        value = read(values)
        if value is None:
            return RuleResult(rules.NA, {"text": None})
        if simple and value.__class__ is str:
            indexed = context.texts.get(path)
            if indexed is None or indexed.original is not value:
                indexed = context.texts[path] = index(value)
            return matcher.judge(value, indexed)
        turns = _turns(value, speakers, turn)
        if not turns:
            return RuleResult(rules.NA, {"turns": [], "speakers": list(speakers or ()), "turn": turn})
        filled = context.placeholders
        unfilled = [name for name in names if not normalise(str(filled.get(name) or ""))]
        if unfilled:
            return RuleResult(rules.NA, {
                "unfilled": unfilled,
                "note": "no value for " + ", ".join(f"<{n}>" for n in unfilled)
                        + ": set it in the tenant's or the plugin's settings"})
        texts = []
        for number, text in turns:
            key = path if number is None else f"{path}[{number}]"
            indexed = context.texts.get(key)
            if indexed is None or indexed.original is not text:
                indexed = context.texts[key] = index(text)
            texts.append((number, text, indexed))
        ok, found = True, []
        for group, entry, missing in zip(required, written, absent):
            for phrase in group:
                matches = _matches(phrase, texts, filled)
                if matches:
                    found.append(_found(entry, "required", matches))
                    break
            else:
                ok = False
                found.append(missing)
        for phrase, missing in zip(forbidden, absent_forbidden):
            matches = _matches(phrase, texts, filled)
            if matches:
                ok = False
                hit = _found(phrase.written, "forbidden", matches)
                if phrase.library:
                    hit["library"], hit["library_kind"] = phrase.library, phrase.library_kind
                found.append(hit)
            elif phrase.library is None:
                found.append(missing)
        evidence = {"phrases": found}
        if not (len(turns) == 1 and turns[0][0] is None):
            evidence["turns"] = [number for number, _ in turns]
        return rules.new_result((rules.PASS if ok else rules.FAIL, evidence, None))

    return evaluate


def _found(phrase: Any, kind: str, matches: list[dict]) -> dict:
    return {"phrase": phrase, "kind": kind, "found": True,
            "at": [m["start"] for m in matches], "matched": [m["text"] for m in matches],
            "matches": matches}


def _matches(phrase: Phrase, texts, values) -> list[dict]:
    return [{"phrase": phrase.written, "text": text[start:end], "start": start, "end": end,
             "turn": number}
            for number, text, indexed in texts for start, end in phrase.spans(indexed, values)]


def _turns(value: Any, speakers: tuple[str, ...] | None, turn: str) -> list[tuple[int | None, str]]:
    """``(index in the transcript or None, text)`` of the turns judged."""
    if isinstance(value, str):
        if speakers is not None:
            raise RuleInputError("a speaker is selected but the field holds a plain text, "
                                 "not a list of turns")
        return [(None, value)]
    if not isinstance(value, list):
        raise RuleInputError(f"phrases are looked for in a text or a list of turns, not {value!r}")
    kept = []
    for number, entry in enumerate(value):
        if not isinstance(entry, Mapping) or not isinstance(entry.get("text", ""), (str, type(None))):
            raise RuleInputError(f"turn {number}: a turn is {{\"speaker\": ..., \"text\": \"...\"}}, "
                                 f"not {entry!r}")
        if speakers is not None and entry.get("speaker") not in speakers:
            continue
        kept.append((number, entry.get("text") or ""))
    if turn == "first":
        return kept[:1]
    if turn == "last":
        return kept[-1:]
    return kept


def placeholder_names(params: Mapping[str, Any]) -> tuple[str, ...]:
    """The placeholders a ``phrases`` rule's phrases use (to know whether a standard needs
    placeholder values)."""
    entries = [p for entry in params.get("required", ()) for p in
               (entry if isinstance(entry, list) else [entry])]
    entries += [p for p in params.get("forbidden", ()) if not p.startswith("@")]
    return tuple(dict.fromkeys(m["name"] for p in entries for m in _TOKEN.finditer(p) if m["name"]))
