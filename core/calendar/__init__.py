"""Business calendars: working hours, holidays and moved working days per tenant, and the
arithmetic of working time (``add``, ``elapsed``) and limits (``"5 working days"``).

Pure: no database, no Flask. See :mod:`core.calendar.model` for how a day's hours are
decided and :mod:`core.calendar.arithmetic` for the rules of the arithmetic.
"""

from servq.core.calendar.arithmetic import NoWorkingTime
from servq.core.calendar.clock import Calendar, WallClock, due
from servq.core.calendar.limits import Limit, LimitError, LimitField, parse_limit
from servq.core.calendar.model import BusinessCalendar
from servq.core.calendar.schema import CalendarSchema

__all__ = [
    "BusinessCalendar", "Calendar", "CalendarSchema", "Limit", "LimitError", "LimitField",
    "NoWorkingTime", "WallClock", "due", "parse_limit",
]
