"""Pure time: business calendars (working hours, holidays and moved working days per
tenant), the arithmetic of working time (``add``, ``elapsed``), the one :class:`Calendar`
protocol and wall clock (:data:`WALL`), limits (``"5 working days"``, :func:`deadline_limit`)
and durations written as text (:mod:`core.calendar.durations`).

Pure apart from :mod:`core.calendar.tenant` (a tenant's calendar, read from its settings):
no Flask, and nothing above it in the layers (the scoring engine imports calendar, never
the reverse). See :mod:`core.calendar.model` for how a day's hours are
decided and :mod:`core.calendar.arithmetic` for the rules of the arithmetic.
"""

from servq.core.calendar.arithmetic import NoWorkingTime
from servq.core.calendar.clock import WALL, Calendar, WallClock, due
from servq.core.calendar.durations import (DeadlineLimit, Duration, deadline_limit, format_duration,
                                           parse_deadline_limit, parse_duration)
from servq.core.calendar.limits import Limit, LimitError, LimitField, parse_limit
from servq.core.calendar.model import BusinessCalendar
from servq.core.calendar.schema import CalendarSchema

__all__ = [
    "WALL", "BusinessCalendar", "Calendar", "CalendarSchema", "DeadlineLimit", "Duration", "Limit",
    "LimitError", "LimitField", "NoWorkingTime", "WallClock", "deadline_limit", "due",
    "format_duration", "parse_deadline_limit", "parse_duration", "parse_limit",
]
