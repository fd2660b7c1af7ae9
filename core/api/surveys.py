"""Survey instruments, invitations and results."""

from __future__ import annotations

from flask_smorest import Blueprint

URL = "/surveys"
blp = Blueprint("surveys", __name__, description="Survey instruments, invitations and results.")
