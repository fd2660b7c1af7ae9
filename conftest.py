"""What every test run has, wherever its tests are (``tests/`` or a plugin's ``tests/``):

- ``--shift-clock DAYS`` runs the suite with the clock moved, to catch a test that decides
  what it asserts from today's date;
- the record of every collected test's ``cross_tenant`` routes, for the route walker.

See docs/development.md, "Tests"."""

from __future__ import annotations

import os
from datetime import datetime, timedelta, timezone

import pytest
import time_machine


def pytest_addoption(parser):
    parser.addoption(
        "--shift-clock", metavar="DAYS", type=int,
        default=int(os.environ.get("SERVQ_TEST_SHIFT_CLOCK") or 0),
        help="run the whole suite with this process's clock moved DAYS days ahead (negative: "
             "back), still ticking, to catch a test that decides what it asserts from today's "
             "date (also SERVQ_TEST_SHIFT_CLOCK; CI runs 400)")


def pytest_configure(config):
    """Start the ``--shift-clock`` journey before anything is collected or made, so every
    instant the suite reads (tokens, records, "now" in the app) is in the shifted year.

    Tests that pin their own instant with ``time_machine.travel(…)`` nest inside it and see
    exactly the instant they asked for; only code that reads the real date is moved."""
    days = config.getoption("--shift-clock")
    if days:
        traveller = time_machine.travel(datetime.now(timezone.utc) + timedelta(days=days), tick=True)
        traveller.start()
        config._servq_clock = traveller


def pytest_unconfigure(config):
    traveller = getattr(config, "_servq_clock", None)
    if traveller is not None:
        traveller.stop()


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(config, items):
    """Note every collected test's ``cross_tenant`` declarations before ``-k``, ``-m`` or
    ``--deselect`` drop any, for the route walker (tests/test_route_coverage.py).

    ``config._servq_cross_tenant`` maps each collected test's node id to its file, the
    routes it declares (``"METHOD /rule"``) and its fixtures."""
    seen = getattr(config, "_servq_cross_tenant", None)
    if seen is None:
        seen = config._servq_cross_tenant = {}
    for item in items:
        routes = [route for mark in item.iter_markers("cross_tenant") for route in mark.args]
        seen[item.nodeid] = {"path": item.path, "routes": routes,
                             "fixtures": tuple(getattr(item, "fixturenames", ()))}

