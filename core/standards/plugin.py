"""Core's standards plugin: the re-score job (always on, like every ``core.*`` plugin)."""

from __future__ import annotations

from core.plugins import hookimpl
from core.standards.rescore import rescore_standard


@hookimpl
def register_jobs():
    return [rescore_standard]
