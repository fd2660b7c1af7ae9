"""What ``register_jobs`` returns: a job under the stable name its owner chose."""

from __future__ import annotations

from typing import Any, Callable, NamedTuple


class Job(NamedTuple):
    """A background job: ``Job("property.reindex", reindex)`` (a ``(name, fn)`` pair).

    ``name`` is what the job is queued under in Redis, so it never changes when code
    moves: a plugin's jobs are named ``<plugin id>.<name>``; core's are named after their
    concept (``notify.deliver``). ``fn(session, *args)`` runs it.
    """

    name: str
    fn: Callable[..., Any]


#: The import namespace the code base moves under; an older release's names lack it.
NAMESPACE = "servq."


#: The ``module:qualname`` names release 0.1 queued core's jobs under, frozen here because
#: core's functions move (a name computed from where a function lives today would miss
#: them): aliases of the stable names for one release, then removed.
CORE_JOB_ALIASES: dict[str, str] = {
    "core.deadlines:scan_tenant": "deadlines.scan",
    "core.notify:deliver": "notify.deliver",
    "core.kinds.exports:run_export": "exports.build",
    "core.kpis.rollups:refresh_kpi_rollups": "kpis.refresh",
    "core.reports.plugin:build_report_run": "reports.build",
    "core.standards.rescore:rescore_standard": "standards.rescore",
}


def legacy_name(fn: Callable[..., Any]) -> str:
    """The ``module:qualname`` an older release queued a plugin's ``fn`` under, computed
    from the function as that release did, without the ``servq.`` namespace (core's own
    jobs use :data:`CORE_JOB_ALIASES` instead).

    Accepted as an alias of the job's stable name for one release, so that jobs already
    queued in Redis still run after the move. The aliases go away in the next release.
    """
    module = fn.__module__
    if module.startswith(NAMESPACE):
        module = module[len(NAMESPACE):]
    return f"{module}:{fn.__qualname__}"
