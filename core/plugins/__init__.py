"""The plugin contract. A plugin writes ``from core.plugins import hookimpl``."""

from servq.core.plugins.markers import hookimpl, hookspec
from servq.core.plugins.jobs import Job
from servq.core.plugins.kinds import RecordKind, Transition, Workflow

__all__ = ["Job", "RecordKind", "Transition", "Workflow", "hookimpl", "hookspec"]
