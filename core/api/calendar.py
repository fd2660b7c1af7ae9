"""The tenant's business calendar: time zone, working hours, holidays."""

from __future__ import annotations

from flask_smorest import Blueprint

URL = "/calendar"
blp = Blueprint("calendar", __name__, description="The tenant's business calendar: time zone, working hours, holidays.")
