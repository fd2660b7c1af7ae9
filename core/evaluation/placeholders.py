"""The values of the placeholders of phrases (``<hotline>``, ``<company>``) for a tenant.

A ``phrases`` rule (:mod:`servq.core.scoring.phrases`) may write ``"请拨打<hotline>"``;
at scoring time each ``<name>`` is filled from the tenant's settings:

- ``<plugin.key>``: the value ``key`` of the configuration of the tenant's plugin
  ``plugin`` (``PUT /api/v1/plugins/<plugin>``), e.g. ``<courier.hotline>``;
- ``<key>``: first the ``placeholders`` table of a plugin configuration
  (``{"placeholders": {"hotline": "400-800-1234"}}``), then a top-level text or number
  ``key`` of one; plugins are tried in the order of their ids;
- ``<company>``, when no plugin gives it: the tenant's name.

Only active plugins count. A placeholder with no value makes the item n.a. (its
evidence names it).
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from servq.core.models import Tenant, TenantPlugin


def _text(value: Any) -> str | None:
    if isinstance(value, bool) or not isinstance(value, (str, int, float)):
        return None
    return str(value)


def placeholder_values(session) -> dict[str, str]:
    """The placeholder values of the session's tenant (see the module docstring): two
    queries, made only when a standard in use has a placeholder."""
    rows = session.execute(select(TenantPlugin.plugin_id, TenantPlugin.configuration)
                           .where(TenantPlugin.active.is_(True))
                           .order_by(TenantPlugin.plugin_id)).all()
    named: dict[str, str] = {}
    tables: dict[str, str] = {}
    bare: dict[str, str] = {}
    for plugin_id, configuration in rows:
        if not isinstance(configuration, dict):
            continue
        table = configuration.get("placeholders")
        if isinstance(table, dict):
            for key, value in table.items():
                if _text(value) is not None:
                    tables.setdefault(key, _text(value))
                    named.setdefault(f"{plugin_id}.{key}", _text(value))
        for key, value in configuration.items():
            if _text(value) is not None:
                bare.setdefault(key, _text(value))
                named[f"{plugin_id}.{key}"] = _text(value)
    values = {**bare, **tables, **named}
    if "company" not in values:
        tenant = session.get(Tenant, session.tenant_id)
        if tenant is not None:
            values["company"] = tenant.name
    return values
