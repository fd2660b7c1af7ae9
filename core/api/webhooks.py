"""Webhooks, the notification outbox and deliveries."""

from __future__ import annotations

from flask_smorest import Blueprint

URL = "/webhooks"
blp = Blueprint("webhooks", __name__, description="Webhooks, the notification outbox and deliveries.")
