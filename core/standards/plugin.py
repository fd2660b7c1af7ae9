"""Core's standards plugin: the re-score job (always on, like every ``core.*`` plugin)."""

from __future__ import annotations

from servq.core.plugins import Job, hookimpl
from servq.core.standards.rescore import rescore_standard


@hookimpl
def register_jobs():
    return [Job("standards.rescore", rescore_standard)]
