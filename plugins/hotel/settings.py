"""The tenant's stored configuration of the hotel plugin, defaults filled in."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from servq import TenantPlugin
from servq.plugins.hotel.config import HotelConfig

PLUGIN = "hotel"


def plugin_configuration(session) -> dict[str, Any]:
    row = session.scalar(select(TenantPlugin).where(TenantPlugin.plugin_id == PLUGIN))
    return HotelConfig().load(dict(row.configuration or {}) if row is not None else {})
