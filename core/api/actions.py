"""Corrective actions: opened from failed items and breaches, or by hand."""

from __future__ import annotations

from flask_smorest import Blueprint

URL = "/actions"
blp = Blueprint("actions", __name__, description="Corrective actions: opened from failed items and breaches, or by hand.")
