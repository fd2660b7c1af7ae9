"""Fuzz every operation of the live OpenAPI document: whatever a client sends, no 5xx.

The document is read from the running app, so routes added later are fuzzed too. Only
server errors count here (``not_a_server_error``); schemathesis' other checks (schema
conformance, status codes) are left to the feature tests.

schemathesis' pytest integration (``schemathesis.pytest.from_fixture``) does not run on
pytest 9, so each operation's strategy drives a Hypothesis test inside one pytest test.
"""

from __future__ import annotations

import re

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error

FUZZ_SETTINGS = settings(max_examples=8, deadline=None, derandomize=True, database=None,
                         suppress_health_check=list(HealthCheck))


@pytest.fixture
def fuzz_target(acme):
    """The owner of ``acme`` with a site, so routes with a ``site_id`` reach a real row."""
    site = acme.api.post("/api/v1/sites", json={"code": "HQ", "name": "Head office"})
    assert site.status_code == 201, site.json
    acme.known_ids = {"site_id": site.json["id"]}
    return acme


def _strategy(operation, known_ids: dict):
    """Valid and invalid requests; with the real ids when the path needs only known ones."""
    modes = [GenerationMode.POSITIVE, GenerationMode.NEGATIVE]
    strategies = [operation.as_strategy(generation_mode=mode) for mode in modes]
    names = set(re.findall(r"\{([^}]+)\}", operation.path))
    if names and names <= known_ids.keys():
        fixed = {name: known_ids[name] for name in names}
        strategies += [operation.as_strategy(generation_mode=mode, path_parameters=fixed) for mode in modes]
    return st.one_of(strategies)


@pytest.mark.slow
def test_no_server_errors(app, factory, fuzz_target):
    schema = schemathesis.openapi.from_wsgi("/api/v1/openapi.json", app)
    failures = []
    operations = 0
    for result in schema.get_all_operations():
        operation = result.ok()  # a broken operation in the document fails here, loudly
        operations += 1

        @FUZZ_SETTINGS
        @given(case=_strategy(operation, fuzz_target.known_ids))
        def fuzz(case):
            # A fresh token per example: a fuzzed logout must not turn the rest into 401s.
            token = factory.token(fuzz_target.id, fuzz_target.owner_email)
            case.headers = {**(case.headers or {}), "Authorization": f"Bearer {token}"}
            response = case.call()
            case.validate_response(response, checks=[not_a_server_error])

        try:
            fuzz()
        # Collect every operation's failure, then report them all. schemathesis' check
        # failures are a BaseExceptionGroup, not an Exception.
        except (Exception, BaseExceptionGroup) as exc:
            failures.append(f"{operation.label}: {exc}")
    assert operations > 10
    assert not failures, "\n\n".join(failures)


@pytest.mark.parametrize("value", ["nul\x00byte", "\u202e\ufeff", "x" * 100_000])
def test_hostile_strings_are_client_errors_or_stored(acme, value):
    """Strings the database may refuse (NUL on PostgreSQL) are a 4xx, never a 500."""
    r = acme.api.post("/api/v1/sites", json={"code": "C1", "name": value})
    assert r.status_code in (201, 422), r.json
    if r.status_code == 422:
        assert r.json.get("message") or r.json.get("errors")
        assert acme.api.get("/api/v1/sites").json == []
    else:
        assert acme.api.get(f"/api/v1/sites/{r.json['id']}").json["name"] == value


@pytest.mark.parametrize("query", ["page=99999999999999999999", "page_size=-1", "page=1e3", "page=%00"])
def test_hostile_query_strings_are_client_errors(acme, query):
    r = acme.api.get(f"/api/v1/sites?{query}")
    assert r.status_code == 422, r.json
