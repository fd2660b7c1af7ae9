"""The plugin contract. A plugin writes ``from core.plugins import hookimpl``."""

from core.plugins.markers import hookimpl, hookspec
from core.plugins.jobs import Job
from core.plugins.kinds import RecordKind, Transition, Workflow

__all__ = ["Job", "RecordKind", "Transition", "Workflow", "hookimpl", "hookspec"]
