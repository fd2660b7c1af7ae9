"""The import contracts of ``pyproject.toml`` ([tool.importlinter]) hold.

import-linter reads the installed ``servq`` package and checks every contract: core's
packages are layered (each imports only those below it); core never imports the
industries, the tenant lifecycle or the command line; the fast lane is imported through
its one door; plugins import servq only through the plugin surface. Run alone with
``lint-imports``.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_every_import_contract_is_kept():
    lint = shutil.which("lint-imports", path=str(Path(sys.executable).parent)) or shutil.which("lint-imports")
    assert lint, "import-linter is a test dependency (pip install '.[test]')"
    result = subprocess.run([lint, "--no-cache"], cwd=ROOT, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 broken" in result.stdout


MIGRATIONS = "servq.core.db.migrations"


def test_core_has_no_import_cycle_between_its_packages():
    """Every import counts, a function's late import too: core's packages form no cycle.

    The layers contract of ``pyproject.toml`` orders the concept packages; this check also
    covers the modules outside it (``config``, ``surface``, ``server``, ``ratelimit``).
    Alembic's scripts are left out: Alembic loads them from their files (the layers
    contract ignores their one import of the models too)."""
    import grimp  # import-linter's graph builder

    graph = grimp.build_graph("servq")
    edges: dict[str, set[str]] = {}
    for module in graph.modules:
        if not module.startswith("servq.core.") or module.startswith(MIGRATIONS):
            continue
        source = module.split(".")[2]
        for imported in graph.find_modules_directly_imported_by(module):
            if imported.startswith("servq.core.") and imported.split(".")[2] != source:
                edges.setdefault(source, set()).add(imported.split(".")[2])
    cycles = []
    for start in sorted(edges):
        # a path from one of start's imports back to start is a cycle through start
        seen, stack = set(), [(start, (start,))]
        while stack:
            node, path = stack.pop()
            for nxt in sorted(edges.get(node, ())):
                if nxt == start and len(path) > 1:
                    cycles.append(" -> ".join(path + (start,)))
                elif nxt not in seen and nxt != start:
                    seen.add(nxt)
                    stack.append((nxt, path + (nxt,)))
    assert not cycles, "import cycles between core's packages:\n" + "\n".join(sorted(set(cycles)))
