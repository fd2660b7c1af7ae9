"""servq: multi-tenant service quality management, and the plugin surface.

The one import namespace of everything servq installs. The repository keeps the owner's
top-level folders; this package maps them in (``src/servq/`` holds links to them):

- ``servq.core`` ← ``core/``: the platform;
- ``servq.plugins`` ← ``plugins/``: the built-in industry plugins;
- ``servq.tenants`` ← ``tenants/``: manifests, onboarding, export, offboarding;
- ``servq.cli`` ← ``cli.py``: the ``servq`` command.

After ``pip install .`` site-packages holds ``servq`` and nothing else of ours.

Plugins, built-in and third-party, import from here and from nowhere else of servq:
``from servq import hookimpl, RecordKind, Blueprint, require, ...``. Each name is one of
:mod:`servq.core.surface`, where it is described; it is loaded on first use, so importing
``servq`` itself loads nothing of the platform.
"""

from __future__ import annotations

from importlib import metadata
from typing import Any

try:
    __version__ = metadata.version("servq")
except metadata.PackageNotFoundError:  # pragma: no cover - run from a tree not installed
    __version__ = "0+unknown"

#: The subpackages: never surface names, imported as modules.
_PACKAGES = frozenset({"core", "plugins", "tenants", "cli"})


def __getattr__(name: str) -> Any:
    """A name of the plugin surface (:mod:`servq.core.surface`), loaded on first use."""
    if name not in _PACKAGES and not name.startswith("_"):
        from servq.core import surface

        if name in surface.__all__:
            value = getattr(surface, name)
            globals()[name] = value
            return value
    raise AttributeError(f"module 'servq' has no attribute {name!r}")


def __dir__() -> list[str]:
    from servq.core import surface

    return sorted(set(globals()) | set(surface.__all__))
