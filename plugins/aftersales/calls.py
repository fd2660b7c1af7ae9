"""The call kind's data: a transcript of speaker turns, its numbers masked when stored.

``aftersales.call`` is imported in bulk and scored on ingestion, so its transcript is
checked by one field (:class:`TranscriptField`) rather than a nested schema per turn.
"""

from __future__ import annotations

import math
import re
from typing import Any, ClassVar

from marshmallow import RAISE, Schema, ValidationError, fields, post_load, validate

SPEAKERS = ("agent", "customer")


class CustomerSchema(Schema):
    """The customer: personal data, masked for roles without ``personal_data``."""

    class Meta:
        unknown = RAISE

    name = fields.String(validate=validate.Length(max=200))
    phone = fields.String(validate=[validate.Length(max=40), validate.Regexp(
        r"^\+?[0-9][0-9 ()\-]{2,38}$",
        error="A phone number: digits, spaces, '-', '(' and ')', optionally starting with '+'.")])
    email = fields.Email(validate=validate.Length(max=254))


# Personal numbers in what was said: mainland mobiles, landlines with area code, 18-digit
# ID numbers and 16-19 digit card numbers (digits may be split by spaces or dashes).
_NUMBER_RE = re.compile(r"(?<![0-9])(?:\+?86[ \-]?)?(?:[0-9][ \-]?){6,18}[0-9Xx](?![0-9])")


def mask_numbers(text: str) -> str:
    """``text`` with every run of 7 or more digits (phone, ID, card numbers) masked, keeping
    the first three and last four digits of 11 or more (``138****5678``), two and two of
    shorter ones."""

    def mask(match: re.Match) -> str:
        digits = re.sub(r"[^0-9Xx]", "", match.group(0))
        if len(digits) < 7:
            return match.group(0)
        head, tail = (3, 4) if len(digits) >= 11 else (2, 2)
        return digits[:head] + "*" * (len(digits) - head - tail) + digits[-tail:]

    return _NUMBER_RE.sub(mask, text)


_TURN_KEYS = frozenset({"speaker", "start_s", "end_s", "text"})


class TranscriptField(fields.Field):
    """A transcript: a list (at most 2,000) of turns ``{speaker: agent|customer, text,
    start_s, end_s}`` (times in seconds from the start, optional). Checked by hand, not by
    a nested schema per turn: calls are imported in bulk and scored on ingestion. The
    numbers said are masked here (:func:`mask_numbers`)."""

    default_error_messages: ClassVar[dict[str, str]] = {"invalid": "A list of turns {speaker, text, start_s, end_s}."}

    def _deserialize(self, value, attr, data, **kwargs):
        if not isinstance(value, list):
            raise self.make_error("invalid")
        if len(value) > 2000:
            raise ValidationError("At most 2000 turns.")
        errors: dict[int, dict[str, list[str]]] = {}
        out = []
        for index, turn in enumerate(value):
            if not isinstance(turn, dict):
                errors[index] = {"_schema": ["A turn is an object {speaker, text, start_s, end_s}."]}
                continue
            problems: dict[str, list[str]] = {}
            for key in turn.keys() - _TURN_KEYS:
                problems[str(key)] = ["Unknown field."]
            if turn.get("speaker") not in SPEAKERS:
                problems["speaker"] = [f"One of: {', '.join(SPEAKERS)}."]
            text = turn.get("text")
            if not isinstance(text, str):
                problems["text"] = ["A text (required)."]
            elif len(text) > 20_000 or "\x00" in text:
                problems["text"] = ["At most 20000 characters, no NUL."]
            times = {}
            for key in ("start_s", "end_s"):
                moment = turn.get(key)
                if moment is None:
                    times[key] = None
                elif isinstance(moment, bool) or not isinstance(moment, (int, float)) \
                        or not math.isfinite(moment) or moment < 0 or moment > 864_000:
                    problems[key] = ["Seconds from the start of the call (0 or more)."]
                else:
                    times[key] = moment
            if problems:
                errors[index] = problems
                continue
            out.append({"speaker": turn["speaker"], "start_s": times["start_s"], "end_s": times["end_s"],
                        "text": mask_numbers(text)})
        if errors:
            raise ValidationError(errors)
        return out


class CallData(Schema):
    """``data`` of an ``aftersales.call``; numbers in the transcript are masked on write and
    ``agent_chars_per_minute`` is derived (agent characters over the agent's speaking time)."""

    class Meta:
        unknown = RAISE

    call_id = fields.String(required=True, validate=validate.Length(min=1, max=100))
    direction = fields.String(load_default="in", validate=validate.OneOf(("in", "out")))
    purpose = fields.String(load_default="service",
                            validate=validate.OneOf(("service", "telemarketing", "callback", "survey")))
    customer = fields.Nested(CustomerSchema, load_default=dict)
    started_at = fields.AwareDateTime(load_default=None, allow_none=True)
    duration_s = fields.Integer(load_default=None, allow_none=True, strict=True,
                                validate=validate.Range(min=0, max=86_400))
    recording_url = fields.Url(load_default=None, allow_none=True, validate=validate.Length(max=2000))
    transcript = TranscriptField(load_default=None, allow_none=True, metadata={
        "description": "Turns {speaker: agent|customer, text, start_s, end_s}; numbers masked on write",
        "type": "array", "items": {"type": "object"}})
    ticket_id = fields.UUID(load_default=None, allow_none=True)
    colloquialisms = fields.Integer(load_default=None, allow_none=True, strict=True,
                                    validate=validate.Range(min=0, max=1000),
                                    metadata={"description": "Colloquialisms counted (reviewer or lexicon)"})
    agent_chars_per_minute = fields.Raw(load_default=None, metadata={"description": "Derived"})

    @post_load
    def _derive(self, data: dict[str, Any], **kwargs) -> dict[str, Any]:
        turns = data.get("transcript")
        if turns:
            data["agent_chars_per_minute"] = _speech_rate(turns, data.get("duration_s"))
        else:
            data["agent_chars_per_minute"] = None
        return data


_SPOKEN_RE = re.compile(r"[\w]", re.UNICODE)


def _speech_rate(turns: list[dict[str, Any]], duration_s: int | None) -> float | None:
    """Characters (letters, digits, CJK; no punctuation or spaces) the agent said per minute of
    the agent's turns; without turn times, per minute of the whole call; else n.a."""
    agent = [t for t in turns if t["speaker"] == "agent"]
    chars = sum(len(_SPOKEN_RE.findall(t["text"])) for t in agent)
    if agent and all(t.get("start_s") is not None and t.get("end_s") is not None for t in agent):
        seconds = sum(max(0.0, t["end_s"] - t["start_s"]) for t in agent)
    else:
        seconds = float(duration_s or 0)
    if not chars or seconds <= 0:
        return None
    return round(chars * 60.0 / seconds, 1)
