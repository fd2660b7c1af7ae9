"""Hotel and conference centre: rooms turned over and inspected, check-out damage handled
fairly, meetings and offices served on time, a kitchen gate, repairs from defects.

Guide: plugins/hotel/README.md.
"""

from __future__ import annotations

from servq import hookimpl
from servq.plugins.hotel import (
    config,
    demo,
    hooks,
    kinds,
    kinds_service,
    kpis,
    onboarding,
)

WATCHED = (hooks.TURNOVER, hooks.CHECKOUT, hooks.OFFICE)


@hookimpl
def register_record_kinds():
    return kinds.room_kinds() + kinds_service.service_kinds()


@hookimpl
def register_standards():
    return [("servq.plugins.hotel", "standards")]


@hookimpl
def register_config_schema():
    return config.HotelConfig


@hookimpl
def tenant_onboarded(session, tenant, manifest):
    onboarding.onboard(session, tenant, manifest)


@hookimpl
def register_demo_data():
    return [demo.load]


@hookimpl
def register_kpis():
    return kpis.METRICS


@hookimpl
def record_created(session, record, actor_id):
    if record.kind in WATCHED:
        hooks.on_write(session, record, None)


record_created.wants = lambda session, kind: kind in WATCHED


@hookimpl
def record_changed(session, record, changes, actor_id):
    if record.kind in WATCHED and record.deleted_at is None:
        hooks.on_write(session, record, changes)
