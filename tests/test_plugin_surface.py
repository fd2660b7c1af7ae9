"""Plugins import servq only through the plugin surface: ``from servq import ...``.

Every module under ``plugins/`` (their ``tests`` excepted) and ``examples/`` is parsed with
``ast``; an import of any module of ``servq.core``, ``servq.tenants`` or ``servq.cli`` (or
of the folders by their old top-level names) fails the test, naming the file, the line and
the import. Core's inner layout is then free to change.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import servq
import servq.core.surface

ROOT = Path(__file__).resolve().parent.parent
#: Modules a plugin may not import: servq's own below the top level, and the folders by
#: their old top-level names. ``servq`` itself (the surface) is allowed.
GUARDED = ("servq.core", "servq.tenants", "servq.cli", "servq.plugins", "core", "tenants", "cli")


def _guarded(module: str, own: str | None = None) -> bool:
    """Whether ``module`` is past the surface; a plugin may import its own package ``own``."""
    if own is not None and (module == own or module.startswith(own + ".")):
        return False
    return any(module == g or module.startswith(g + ".") for g in GUARDED)


def forbidden_imports(path: Path) -> list[str]:
    """``"<file>:<line>: <import>"`` for each import of servq past the surface."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    parts = path.relative_to(ROOT).parts
    own = f"servq.plugins.{parts[1]}" if parts[0] == "plugins" and len(parts) > 2 else None
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            modules = [node.module]
            text = f"from {node.module} import {', '.join(a.name for a in node.names)}"
            if node.module in ("servq.core", "servq.tenants", "core", "tenants"):
                # ``from servq.core import db`` imports the module servq.core.db
                modules = [f"{node.module}.{a.name}" for a in node.names]
            elif node.module == "servq":  # the surface, except its subpackages
                modules = [f"servq.{a.name}" for a in node.names
                           if a.name in ("core", "plugins", "tenants", "cli")]
        elif isinstance(node, ast.Import):
            modules = [a.name for a in node.names]
            text = f"import {', '.join(a.name for a in node.names)}"
        else:
            continue
        if any(_guarded(m, own) for m in modules):
            found.append((node.lineno, f"{path.relative_to(ROOT)}:{node.lineno}: {text}"))
    return [line for _, line in sorted(found)]


def plugin_modules() -> list[Path]:
    # plugins/<plugin>/tests/... may import core's internals to assert on them
    paths = [p for p in (ROOT / "plugins").rglob("*.py") if "tests" not in p.relative_to(ROOT).parts[2:]]
    return sorted(paths + list((ROOT / "examples").rglob("*.py")))


def test_plugins_import_only_the_surface():
    modules = plugin_modules()
    assert ROOT / "plugins" / "property" / "kpis.py" in modules
    assert ROOT / "examples" / "servq-example-plugin" / "servq_example" / "__init__.py" in modules
    assert not any("tests" in p.parts for p in modules if p.is_relative_to(ROOT / "plugins"))
    offenders = [line for path in modules for line in forbidden_imports(path)]
    assert offenders == [], "plugins import servq only as `from servq import ...`:\n" + "\n".join(offenders)


def test_the_check_names_file_line_and_import(monkeypatch):
    module = ROOT / "plugins" / "_surface_probe.py"
    source = ("from servq import hookimpl\n"
              "def f():\n    from servq.core.deadlines.schedules import matches_statement\n"
              "import servq.tenants.manifest\nfrom servq.core import db\nfrom servq import cli\n"
              "from core.surface import Blueprint\n")
    monkeypatch.setattr(Path, "read_text", lambda self, encoding=None: source)
    assert forbidden_imports(module) == [
        "plugins/_surface_probe.py:3: from servq.core.deadlines.schedules import matches_statement",
        "plugins/_surface_probe.py:4: import servq.tenants.manifest",
        "plugins/_surface_probe.py:5: from servq.core import db",
        "plugins/_surface_probe.py:6: from servq import cli",
        "plugins/_surface_probe.py:7: from core.surface import Blueprint",
    ]


def test_every_surface_name_resolves_and_is_described():
    described = servq.core.surface.__doc__
    for name in servq.core.surface.__all__:
        assert getattr(servq.core.surface, name) is not None
        assert getattr(servq, name) is getattr(servq.core.surface, name)
        assert f"``{name}" in described, f"{name} has no description in servq.core.surface's docstring"


def test_importing_the_surface_loads_nothing_of_core():
    """``import servq.core.surface`` is cheap and has no side effects: names load on first use."""
    code = ("import sys, servq.core.surface; "
            "print(sorted(m for m in sys.modules if m.split('.')[0] in ('servq', 'core', 'tenants')))")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "['servq', 'servq.core', 'servq.core.surface']"
