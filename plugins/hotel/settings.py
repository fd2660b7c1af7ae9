"""The tenant's stored configuration of the hotel plugin, defaults filled in."""

from __future__ import annotations

from typing import Any

from servq import plugin_settings
from servq.plugins.hotel.config import HotelConfig

PLUGIN = "hotel"


def plugin_configuration(session) -> dict[str, Any]:
    return HotelConfig().load(plugin_settings(session, PLUGIN))
