"""Fixtures of the courier plugin's tests: core's fixtures (a fresh database per test,
SQLite or PostgreSQL, the app, factories) and a courier company onboarded from a manifest.

``station`` is a tenant with the plugin enabled (hotline ``400-820-8888``, company name
``迅达``), two stations (``STN-XH``, ``STN-PD``), three couriers (``C1`` and ``C2`` at XH,
``C3`` at PD) and clients for its owner, a manager and an inspector. ``globex`` (core's) is
a tenant without the plugin.
"""

from __future__ import annotations

from typing import Any

import pytest

from servq.testing import Onboarded
from tests.conftest import (acme, app, app_config, client, database, factory, globex, present,  # noqa: F401
                            pytest_collection_modifyitems, runner)

CALENDAR = {
    "timezone": "Asia/Shanghai",
    "country": "CN",
    "working_hours": {day: ["09:00-12:00", "13:00-18:00"] for day in ("mon", "tue", "wed", "thu", "fri")},
}
CONFIG = {"company_name": "迅达", "hotline": "400-820-8888"}
ROLES = ("manager", "inspector", "agent")


#: A courier company onboarded for a test (servq.testing's Onboarded).
Company = Onboarded


def manifest(slug: str, configuration: dict[str, Any] | None = None) -> dict[str, Any]:
    domain = f"{slug}.test"
    return {
        "slug": slug, "name": "Xunda Express 迅达快递", "industry": "courier",
        "timezone": "Asia/Shanghai", "locale": "zh",
        "plugins": {"courier": dict(CONFIG if configuration is None else configuration)},
        "admins": [{"email": f"owner@{domain}", "role": "owner", "name": "Owner"},
                   *({"email": f"{role}@{domain}", "role": role, "name": role.title()} for role in ROLES)],
        "sites": [{"code": "STN-XH", "name": "徐汇站"}, {"code": "STN-PD", "name": "浦东站"}],
        "staff": [{"code": "C1", "name": "王强", "site": "STN-XH"}, {"code": "C2", "name": "李明", "site": "STN-XH"},
                  {"code": "C3", "name": "张伟", "site": "STN-PD"},
                  {"code": "M1", "name": "冯刚", "site": "STN-XH", "title": "Station manager"},
                  {"code": "M2", "name": "蒋宁", "site": "STN-PD", "title": "Station manager"}],
        "calendar": dict(CALENDAR),
    }


@pytest.fixture
def make_company(onboard_manifest):
    """``make_company(slug, configuration=None)`` onboards a courier company from its manifest."""

    def make(slug: str = "xunda", configuration: dict[str, Any] | None = None) -> Company:
        return onboard_manifest(manifest(slug, configuration))

    return make


@pytest.fixture
def company(make_company) -> Company:
    return make_company("xunda")
