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

The values are read once per transaction and tenant (a bulk import scores chunk after
chunk in one transaction: two queries each, and a wait for the queued writes before
them, were per chunk); a change of a plugin's settings or of the tenant in the session,
flushed or not, makes them read again.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import event, select
from sqlalchemy.orm import object_session

from servq.core.db.state import TRANSACTION, Slot
from servq.core.models import Tenant, TenantPlugin

#: (transaction, tenant id, values) of the last :func:`placeholder_values` of the session.
_VALUES: Slot[tuple] = Slot("servq.placeholders", TRANSACTION, __name__)
_SETTINGS = (TenantPlugin, Tenant)


def _text(value: Any) -> str | None:
    if isinstance(value, bool) or not isinstance(value, (str, int, float)):
        return None
    return str(value)


def placeholder_values(session) -> dict[str, str]:
    """The placeholder values of the session's tenant (see the module docstring): two
    queries, made only when a standard in use has a placeholder, once per transaction."""
    transaction = session.get_transaction()
    cached = session.state.get(_VALUES)
    if (cached is not None and transaction is not None and cached[0] is transaction
            and cached[1] == session.tenant_id and not _settings_pending(session)):
        return dict(cached[2])
    values = _read(session)
    session.state.set(_VALUES, (session.get_transaction(), session.tenant_id, values))
    return dict(values)


def _settings_pending(session) -> bool:
    """Whether the session holds a change of a plugin's settings or of a tenant not yet
    flushed (reading the values flushes it)."""
    return any(isinstance(obj, _SETTINGS) for objects in (session.new, session.dirty, session.deleted)
               for obj in objects)


def _forget(mapper, connection, target) -> None:
    """A plugin's settings or a tenant written: the session reads the values again."""
    session = object_session(target)
    state = getattr(session, "state", None)
    if state is not None:
        state.pop(_VALUES)


for _model in _SETTINGS:
    for _name in ("after_insert", "after_update", "after_delete"):
        event.listen(_model, _name, _forget)


def _read(session) -> dict[str, str]:
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
