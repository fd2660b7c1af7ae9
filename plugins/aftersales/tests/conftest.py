"""Fixtures of the after-sales plugin's tests: core's test fixtures (a fresh database per
test, SQLite or PostgreSQL, the app, factories) and a after-sales service company onboarded the way
a real one is, from a manifest.

``centre`` is a tenant with the plugin enabled, two service centres (sites
``NC-SC`` and ``JJ-SC``), a business calendar on China's public holidays and clients for
its owner (``centre.api``), a manager, a viewer, an inspector and an agent.
``make_centre(slug, configuration=..., calendar=...)`` makes more of them; ``globex`` (from
core's fixtures) is a tenant without the plugin.
"""

from __future__ import annotations

from typing import Any

import pytest

from servq.testing import Onboarded
from tests.conftest import (acme, app, app_config, client, database, factory, globex, present,  # noqa: F401
                            pytest_collection_modifyitems, runner)

#: The business calendar of the test centres: Monday to Friday 09:00-12:00 and
#: 13:00-18:00 in Shanghai with China's public holidays .
CALENDAR = {
    "timezone": "Asia/Shanghai",
    "country": "CN",
    "working_hours": {day: ["09:00-12:00", "13:00-18:00"] for day in ("mon", "tue", "wed", "thu", "fri")},
}
SITES = (
    {"code": "NC-SC", "name": "Nanchang service centre", "address": "Nanchang"},
    {"code": "JJ-SC", "name": "Jiujiang service centre", "address": "Jiujiang"},
)
ROLES = ("manager", "viewer", "inspector", "agent")


#: An after-sales service company onboarded for a test (servq.testing's Onboarded).
Centre = Onboarded


def centre_manifest(slug: str, configuration: dict[str, Any] | None = None,
                    calendar: dict[str, Any] | None = None) -> dict[str, Any]:
    """The manifest of a test after-sales service company (see ``tenants/manifest.py``)."""
    domain = f"{slug}.test"
    manifest = {
        "slug": slug,
        "name": f"{slug.title()} Equipment Co.",
        "industry": "aftersales",
        "timezone": "Asia/Shanghai",
        "locale": "zh",
        "plugins": {"aftersales": dict(configuration or {})},
        "admins": [{"email": f"owner@{domain}", "role": "owner", "name": "Olivia Owner"},
                   *({"email": f"{role}@{domain}", "role": role, "name": role.title()}
                     for role in ROLES)],
        "sites": [dict(site) for site in SITES],
    }
    if calendar is not False:
        manifest["calendar"] = dict(calendar or CALENDAR)
    return manifest


@pytest.fixture
def make_centre(onboard_manifest):
    """``make_centre(slug, configuration=None, calendar=None)`` onboards an after-sales service
    company from its manifest (``tenants.onboarding.onboard``) and returns a :class:`Centre`."""

    def make(slug: str = "huaxin", configuration: dict[str, Any] | None = None,
             calendar: dict[str, Any] | None = None) -> Centre:
        return onboard_manifest(centre_manifest(slug, configuration, calendar))

    return make


@pytest.fixture
def centre(make_centre) -> Centre:
    """A after-sales service company with the plugin enabled (default configuration), two centres and
    a client per role."""
    return make_centre("huaxin")
