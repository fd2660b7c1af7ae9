"""The tenancy contract of the HTTP API: every route has a cross-tenant test.

DESIGN.md: "Every route has a cross-tenant test" and "another tenant's object is a 404,
never a 403". A test declares the routes it covers with a marker naming each one exactly
as the app's URL map spells it::

    @pytest.mark.cross_tenant("GET /api/v1/sites/<uuid:site_id>",
                              "PATCH /api/v1/sites/<uuid:site_id>")
    def test_site_cross_tenant(acme, globex): ...

and proves there that the other tenant gets a 404 (or, for a list, none of the owner's
rows) and that nothing changed for the owner. The walker below takes every route of an
app with every built-in plugin and the sample plugin, and fails naming each route that no
collected test declares and that is not exempt below with a reason. The declarations are
read from pytest's collection (``pytest_collection_modifyitems`` in the root conftest.py),
so the walker needs the whole suite: run with some test files only, it skips (a plain
``pytest``, which collects the ``testpaths``, never skips it)."""

from __future__ import annotations

from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

#: Routes with no tenant data to cross, each with the reason.
EXEMPT = {
    "GET /api/v1/openapi.json": "the API description, the same for everybody",
    "GET /api/v1/docs": "the interactive documentation page, no data",
    "GET /api/v1/docs/assets/<path:filename>": "static files of the documentation page",
    "GET /static/<path:filename>": "Flask's static files, none of them a tenant's",
    "POST /api/v1/auth/token": "login: the tenant is chosen by the credentials, not a URL "
                               "(tests/test_auth.py proves a token is bound to its membership)",
    "DELETE /api/v1/auth/token": "logout: revokes the caller's own token, names no object",
    "GET /api/v1/me": "the caller's own user and membership, read with the token",
    "GET /api/v1/kpis/metrics": "the catalogue of KPI metrics the plugins register",
    "GET /api/v1/surveys/instruments/builtin": "the built-in survey instruments, shipped code",
    "GET /api/v1/webhooks/event-types": "the catalogue of event types, shipped code",
    "GET /api/v1/phrase-libraries": "the phrase libraries shipped in core/scoring/library, "
                                    "the same for everybody",
    "GET /healthz": "liveness probe, no data (docs/operations.md)",
    "GET /readyz": "readiness probe: database, schema and Redis reachable, no tenant data",
    "GET /metrics": "Prometheus metrics behind SERVQ_METRICS_TOKEN; no tenant ids in labels",
}

#: Fixtures that give a test a second tenant to cross with.
SECOND_TENANT = {"globex", "make_estate", "two_tenants", "tenants"}

pytestmark = pytest.mark.sample_plugin  # the sample plugin's routes are walked too


def app_routes(app) -> set[str]:
    """``"METHOD /rule"`` for every route of ``app`` (HEAD and OPTIONS are Flask's)."""
    return {f"{method} {rule.rule}" for rule in app.url_map.iter_rules()
            for method in rule.methods - {"HEAD", "OPTIONS"}}


def coverage_problems(routes: set[str], declared: dict, exempt: dict[str, str]) -> list[str]:
    """What breaks the contract: routes nobody covers, declarations of routes that do not
    exist, exemptions of routes that do not exist, and declaring tests with no second
    tenant. ``declared`` maps a test's node id to ``{"routes", "fixtures"}``."""
    covered: dict[str, list[str]] = {}
    problems = []
    for nodeid, seen in sorted(declared.items()):
        for route in seen["routes"]:
            covered.setdefault(route, []).append(nodeid)
            if route not in routes:
                problems.append(f"{nodeid}: declares {route!r}, which is no route of the app")
        if seen["routes"] and not SECOND_TENANT & set(seen["fixtures"]):
            problems.append(f"{nodeid}: declares cross_tenant routes but uses no second tenant "
                            f"(one of the fixtures {', '.join(sorted(SECOND_TENANT))})")
    for route in sorted(routes - covered.keys() - exempt.keys()):
        problems.append(f"{route}: no cross-tenant test (declare one with "
                        f"@pytest.mark.cross_tenant({route!r}))")
    for route in sorted(exempt.keys() - routes):
        problems.append(f"{route}: exempt, but no route of the app")
    return problems


def uncollected_test_files(config, declared: dict) -> list[str]:
    """Test files of the suite's ``testpaths`` this session did not collect."""
    collected = {Path(seen["path"]).resolve() for seen in declared.values()}
    on_disk = {path.resolve() for folder in config.getini("testpaths")
               for path in (ROOT / folder).rglob("test_*.py")}
    return sorted(str(path.relative_to(ROOT)) for path in on_disk - collected)


def test_every_route_has_a_cross_tenant_test(request, app):
    declared = getattr(request.config, "_servq_cross_tenant", {})
    missing = uncollected_test_files(request.config, declared)
    if missing and request.config.args_source == pytest.Config.ArgsSource.TESTPATHS:
        # A plain ``pytest`` must check the routes: never skip silently there.
        pytest.fail(f"a plain pytest run collected no test of {', '.join(missing)}; the "
                    f"route walker needs every test file collected", pytrace=False)
    if missing:
        pytest.skip(f"the route walker reads the cross_tenant markers of the whole suite, and "
                    f"{len(missing)} test files were not collected (e.g. {missing[0]}): run "
                    f"pytest without paths to check the routes")
    routes = app_routes(app)
    # Every built-in plugin and the sample plugin are mounted, so their routes are walked.
    assert "GET /api/v1/property/sites/<uuid:site_id>/obligations" in routes
    assert "GET /api/v1/sample/summary" in routes
    problems = coverage_problems(routes, declared, EXEMPT)
    assert not problems, "\n".join(problems)


def test_the_walker_bites():
    routes = {"GET /api/v1/things/<uuid:thing_id>", "GET /api/v1/openapi.json",
              "DELETE /api/v1/things/<uuid:thing_id>"}
    declared = {
        "tests/test_x.py::test_a": {"routes": ["GET /api/v1/things/<uuid:thing_id>"],
                                    "fixtures": ("acme", "globex")},
        "tests/test_x.py::test_b": {"routes": ["GET /api/v1/thing/<uuid:thing_id>"],
                                    "fixtures": ("acme",)},
        "tests/test_x.py::test_c": {"routes": [], "fixtures": ("acme",)},
    }
    exempt = {"GET /api/v1/openapi.json": "no data", "GET /api/v1/gone": "removed"}
    assert coverage_problems(routes, declared, exempt) == [
        "tests/test_x.py::test_b: declares 'GET /api/v1/thing/<uuid:thing_id>', which is no "
        "route of the app",
        "tests/test_x.py::test_b: declares cross_tenant routes but uses no second tenant (one "
        "of the fixtures globex, make_estate, tenants, two_tenants)",
        "DELETE /api/v1/things/<uuid:thing_id>: no cross-tenant test (declare one with "
        "@pytest.mark.cross_tenant('DELETE /api/v1/things/<uuid:thing_id>'))",
        "GET /api/v1/gone: exempt, but no route of the app",
    ]


def test_a_partial_run_is_noticed(request):
    declared = getattr(request.config, "_servq_cross_tenant", {})
    # This file itself was collected; a file no test of which was collected is reported.
    assert "tests/test_route_coverage.py" not in uncollected_test_files(request.config, declared)
    only_this = {k: v for k, v in declared.items() if Path(v["path"]).name == "test_route_coverage.py"}
    assert "tests/test_sites.py" in uncollected_test_files(request.config, only_this)
