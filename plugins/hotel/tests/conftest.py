"""Fixtures of the hotel plugin's tests: core's fixtures (a fresh database per test, SQLite
or PostgreSQL) and a hotel onboarded from a manifest (``hotel``), with a client per role;
``globex`` (core's) is a tenant without the plugin."""

from __future__ import annotations

from typing import Any

import pytest

from servq.testing import Onboarded
from tests.conftest import (acme, app, app_config, client, database, factory, globex, present,  # noqa: F401
                            pytest_collection_modifyitems, runner)

CALENDAR = {"timezone": "Asia/Shanghai", "country": "CN",
            "working_hours": {d: ["09:00-12:00", "13:00-18:00"] for d in ("mon", "tue", "wed", "thu", "fri")}}
ROLES = ("manager", "viewer", "inspector", "agent")


#: A hotel onboarded for a test (servq.testing's Onboarded; ``site_id``: its one site).
Hotel = Onboarded


def hotel_manifest(slug: str, configuration: dict[str, Any] | None = None) -> dict[str, Any]:
    domain = f"{slug}.test"
    return {
        "slug": slug, "name": "Lakeview Hotel", "industry": "hotel", "timezone": "Asia/Shanghai",
        "locale": "zh", "plugins": {"hotel": dict(configuration or {})}, "calendar": dict(CALENDAR),
        "admins": [{"email": f"owner@{domain}", "role": "owner", "name": "Owner"},
                   *({"email": f"{r}@{domain}", "role": r, "name": r.title()} for r in ROLES)],
        "sites": [{"code": "HTL", "name": "Lakeview Hotel"}],
        "staff": [{"code": "HK-01", "name": "Wang Fang", "site": "HTL", "title": "Room attendant"},
                  {"code": "SV-01", "name": "Sun Qiang", "site": "HTL", "title": "Floor supervisor"}],
    }


@pytest.fixture
def make_hotel(onboard_manifest):
    """``make_hotel(slug, configuration=None)`` onboards a hotel from its manifest."""

    def make(slug: str = "hotel", configuration: dict[str, Any] | None = None) -> Hotel:
        return onboard_manifest(hotel_manifest(slug, configuration))

    return make


@pytest.fixture
def hotel(make_hotel) -> Hotel:
    return make_hotel("hotel", {"meeting_rooms": ["多功能厅"]})
