"""Standards: the shipped catalogue, the tenant's versions, overrides and diffs."""

from __future__ import annotations

from flask_smorest import Blueprint

URL = "/standards"
blp = Blueprint("standards", __name__, description="Standards: the shipped catalogue, the tenant's versions, overrides and diffs.")
