"""The blueprint class of servq's API (and of plugins that want the same speed)."""

from __future__ import annotations

import flask_smorest

from core.api.jsonio import ArgumentsParser


class Blueprint(flask_smorest.Blueprint):
    """flask-smorest's blueprint whose ``@blp.arguments`` load plainly valid JSON bodies
    with :mod:`core.fastload` (same result as marshmallow, errors still marshmallow's):
    see :class:`core.api.jsonio.ArgumentsParser`."""

    ARGUMENTS_PARSER = ArgumentsParser()
