"""Fixtures of the hotel plugin's tests: core's fixtures (a fresh database per test, SQLite
or PostgreSQL) and a hotel onboarded from a manifest (``hotel``), with a client per role;
``globex`` (core's) is a tenant without the plugin."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pytest

from tests.conftest import (acme, app, app_config, client, database, factory, globex, present,  # noqa: F401
                            pytest_collection_modifyitems, runner)
from tests.factories import ApiClient, TenantHandle

CALENDAR = {"timezone": "Asia/Shanghai", "country": "CN",
            "working_hours": {d: ["09:00-12:00", "13:00-18:00"] for d in ("mon", "tue", "wed", "thu", "fri")}}
ROLES = ("manager", "viewer", "inspector", "agent")


@dataclass
class Hotel:
    handle: TenantHandle
    site_id: str
    clients: dict[str, ApiClient] = field(default_factory=dict)

    @property
    def api(self) -> ApiClient:
        return self.handle.api

    @property
    def manager(self) -> ApiClient:
        return self.clients["manager"]

    @property
    def inspector(self) -> ApiClient:
        return self.clients["inspector"]

    def session(self):
        return self.handle.session()


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
def make_hotel(app, factory):
    from sqlalchemy import select

    from servq.core.models import Site
    from servq.tenants.onboarding import onboard

    def make(slug: str = "hotel", configuration: dict[str, Any] | None = None) -> Hotel:
        report = onboard(app, hotel_manifest(slug, configuration))
        handle = TenantHandle(factory, report.tenant_id, slug, f"owner@{slug}.test")
        with factory.session(report.tenant_id) as session:
            site_id = str(session.scalar(select(Site.id)))
        hotel = Hotel(handle, site_id)
        for role in ROLES:
            hotel.clients[role] = ApiClient(factory.client, factory.token(report.tenant_id, f"{role}@{slug}.test"))
        return hotel

    return make


@pytest.fixture
def hotel(make_hotel) -> Hotel:
    return make_hotel("hotel", {"meeting_rooms": ["多功能厅"]})
