"""Evaluations of records against the standards in force."""

from __future__ import annotations

from flask_smorest import Blueprint

URL = "/records"
blp = Blueprint("evaluations", __name__, description="Evaluations of records against the standards in force.")
