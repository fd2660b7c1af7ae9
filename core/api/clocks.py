"""Deadline clocks of records."""

from __future__ import annotations

from flask_smorest import Blueprint

URL = "/records"
blp = Blueprint("clocks", __name__, description="Deadline clocks of records.")
