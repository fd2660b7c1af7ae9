"""Bulk creation of records, all or nothing."""

from __future__ import annotations

from flask_smorest import Blueprint

URL = "/records"
blp = Blueprint("records_batch", __name__, description="Bulk creation of records, all or nothing.")
