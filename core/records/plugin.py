"""Core's re-score plugin (id ``core.standards.plugin``, as stored): the ``standards.rescore``
job, which scores records again through the write pipeline (always on, like every
``core.*`` plugin)."""

from __future__ import annotations

from servq.core.plugins import Job, hookimpl
from servq.core.records.rescore import rescore_standard


@hookimpl
def register_jobs():
    return [Job("standards.rescore", rescore_standard)]
