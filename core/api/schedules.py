"""Recurring obligations and their compliance."""

from __future__ import annotations

from flask_smorest import Blueprint

URL = "/schedules"
blp = Blueprint("schedules", __name__, description="Recurring obligations and their compliance.")
