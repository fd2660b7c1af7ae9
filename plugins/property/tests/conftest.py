"""Fixtures of the property plugin's tests: core's test fixtures (a fresh database per
test, SQLite or PostgreSQL, the app, factories) and a property manager onboarded the way
a real one is, from a manifest.

``estate`` is a tenant with the plugin enabled, two residential estates (sites
``GARDEN`` and ``RIVER``), a business calendar on China's public holidays and clients for
its owner (``estate.api``), a manager, a viewer, an inspector and an agent.
``make_estate(slug, configuration=..., calendar=...)`` makes more of them; ``globex`` (from
core's fixtures) is a tenant without the plugin.
"""

from __future__ import annotations

from typing import Any

import pytest

from servq.testing import Onboarded
from tests.conftest import (acme, app, app_config, client, database, factory, globex, present,  # noqa: F401
                            pytest_collection_modifyitems, runner)

#: The business calendar of the test estates: Monday to Friday 09:00-12:00 and
#: 13:00-18:00 in Shanghai with China's public holidays (the repairs hotline itself runs
#: 24 hours: its deadlines count wall-clock time; only working-day limits read this).
CALENDAR = {
    "timezone": "Asia/Shanghai",
    "country": "CN",
    "working_hours": {day: ["09:00-12:00", "13:00-18:00"] for day in ("mon", "tue", "wed", "thu", "fri")},
}
SITES = (
    {"code": "GARDEN", "name": "Garden Court estate", "address": "18 Hongqiao Road, Shanghai"},
    {"code": "RIVER", "name": "Riverside estate", "address": "200 Binjiang Avenue, Shanghai"},
)
ROLES = ("manager", "viewer", "inspector", "agent")


#: A property manager onboarded for a test (servq.testing's Onboarded: ``api``, a client
#: per role, ``sites`` by code, ``emails`` by role).
Estate = Onboarded


def estate_manifest(slug: str, configuration: dict[str, Any] | None = None,
                    calendar: dict[str, Any] | None = None) -> dict[str, Any]:
    """The manifest of a test property manager (see ``tenants/manifest.py``)."""
    domain = f"{slug}.test"
    manifest = {
        "slug": slug,
        "name": f"{slug.title()} Property Services",
        "industry": "property",
        "timezone": "Asia/Shanghai",
        "locale": "zh",
        "plugins": {"property": dict(configuration or {})},
        "admins": [{"email": f"owner@{domain}", "role": "owner", "name": "Olivia Owner"},
                   *({"email": f"{role}@{domain}", "role": role, "name": role.title()}
                     for role in ROLES)],
        "sites": [dict(site) for site in SITES],
    }
    if calendar is not False:
        manifest["calendar"] = dict(calendar or CALENDAR)
    return manifest


@pytest.fixture
def make_estate(onboard_manifest):
    """``make_estate(slug, configuration=None, calendar=None)`` onboards a property manager
    from its manifest (``tenants.onboarding.onboard``) and returns an :class:`Estate`."""

    def make(slug: str = "estate", configuration: dict[str, Any] | None = None,
             calendar: dict[str, Any] | None = None) -> Estate:
        return onboard_manifest(estate_manifest(slug, configuration, calendar))

    return make


@pytest.fixture
def estate(make_estate) -> Estate:
    """A property manager with the plugin enabled (default configuration), two estates and
    a client per role."""
    return make_estate("estate")
