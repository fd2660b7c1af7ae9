"""The rule type ``courier.window``: the appointment kept, or the customer told in time.

The seed's fault (S 第四条 一) is *not contacting the customer*, not being late: a delivery
passes when the courier arrived by the end of the agreed window (``appointment.to``, or
``appointment.from`` + ``window_minutes``) **or** told the customer of the delay at least
``lead_minutes`` before it ended (``timestamps.delay_notified_at``); a notice after that is
a failure. No appointment: n.a. Neither stamp yet: pending while the window is open or
the record is still on its way (``open_states``: the courier may yet arrive, or the steps
may be entered after the fact), a failure once the attempt is over (failed, rescheduled,
delivered, …) with neither.

A pure rule on the record's values, not a deadline clock: the appointment is the
customer's, so a reschedule (a waiting state) never moves it, while the service time limit
(a deadline item) is paused.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any, Mapping

from marshmallow import Schema, fields, validate

from servq import Outcome, RuleInputError, RuleResult, RuleType


class WindowParams(Schema):
    appointment = fields.String(load_default="appointment", metadata={"description": "The data field of the window"})
    arrived = fields.String(load_default="arrived_at", metadata={"description": "The stamp of arrival"})
    notified = fields.String(load_default="delay_notified_at", metadata={"description": "The stamp of the notice"})
    lead_minutes = fields.Integer(load_default=0, validate=validate.Range(min=0, max=1440))
    window_minutes = fields.Integer(load_default=120, validate=validate.Range(min=1, max=1440))
    open_states = fields.List(fields.String(validate=validate.Length(min=1, max=40)),
                              load_default=lambda: ["received", "out_for_delivery", "requested", "confirmed"],
                              metadata={"description": "Statuses in which an attempt is not over yet"})


def _instant(value: Any, what: str) -> datetime | None:
    if value is None or value == "":
        return None
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value)
        except ValueError:
            raise RuleInputError(f"{what} is not a date and time: {value!r}") from None
    if not isinstance(value, datetime) or value.tzinfo is None:
        raise RuleInputError(f"{what} needs a time zone")
    return value


def compile_window(params: Mapping[str, Any], code: str):
    lead = timedelta(minutes=params["lead_minutes"])
    width = timedelta(minutes=params["window_minutes"])
    field, arrived_key, notified_key = params["appointment"], params["arrived"], params["notified"]
    open_states = frozenset(params["open_states"])

    def evaluate(values: Mapping[str, Any], context) -> RuleResult:
        appointment = values.get(field)
        if not isinstance(appointment, Mapping) or not appointment.get("from"):
            return RuleResult(Outcome.NA, {"appointment": None})
        start = _instant(appointment.get("from"), f"{field}.from")
        end = _instant(appointment.get("to"), f"{field}.to") or start + width
        stamps = values.get("timestamps") or {}
        arrived = _instant(stamps.get(arrived_key), arrived_key)
        notified = _instant(stamps.get(notified_key), notified_key)
        notice_by = end - lead
        evidence = {"window_end": end.isoformat(), "notice_by": notice_by.isoformat(),
                    "arrived_at": arrived and arrived.isoformat(),
                    "delay_notified_at": notified and notified.isoformat()}
        if arrived is not None and arrived <= end:
            return RuleResult(Outcome.PASS, {**evidence, "kept": "arrived"})
        if notified is not None and notified <= notice_by:
            return RuleResult(Outcome.PASS, {**evidence, "kept": "notified"})
        if arrived is None and notified is None and (context.now <= end or values.get("status") in open_states):
            return RuleResult(Outcome.PENDING, evidence)
        return RuleResult(Outcome.FAIL, {**evidence, "kept": None})

    return evaluate


RULE_TYPES = [RuleType("courier.window", WindowParams, compile_window,
                       "Pass when the courier arrived within the appointment window or told the "
                       "customer of the delay before it ended (less lead_minutes).")]
