"""Public survey answering by single-use link, without login."""

from __future__ import annotations

from flask_smorest import Blueprint

URL = "/public"
blp = Blueprint("public", __name__, description="Public survey answering by single-use link, without login.")
