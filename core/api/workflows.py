"""Workflow transitions of records."""

from __future__ import annotations

from flask_smorest import Blueprint

URL = "/records"
blp = Blueprint("workflows", __name__, description="Workflow transitions of records.")
