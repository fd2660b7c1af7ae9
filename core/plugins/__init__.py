"""The plugin contract. A plugin writes ``from core.plugins import hookimpl``."""

from core.plugins.markers import hookimpl, hookspec
from core.plugins.kinds import RecordKind, Transition, Workflow

__all__ = ["RecordKind", "Transition", "Workflow", "hookimpl", "hookspec"]
