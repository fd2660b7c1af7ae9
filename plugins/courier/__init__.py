"""Courier and express: deliveries and pickups with the four prohibited acts, appointments
kept or notified, the call script, failed attempts with reasons and photos.

Adds the record kinds ``courier.delivery``, ``courier.pickup`` and
``courier.vehicle_check``, the rule type ``courier.window`` (appointment kept, or the
customer told before the window ended), the courier standards (快递服务规范 from seed 000
服务质量管理制度(八篇): the four prohibited acts as critical items, the five lines of the call
script, appearance, vehicles), the repeat rule (the same act three times in a calendar month
flags the courier for the station manager), the internal manager-service survey, KPIs and
demo data. Guide: plugins/courier/README.md.
"""

from __future__ import annotations

from servq import hookimpl
from servq.plugins.courier import conduct, config, demo, kinds, kpis, onboarding, rules


@hookimpl
def register_record_kinds():
    return kinds.record_kinds()


@hookimpl
def register_rule_types():
    return rules.RULE_TYPES


@hookimpl
def register_standards():
    return [("servq.plugins.courier", "standards")]


@hookimpl
def register_config_schema():
    return config.CourierConfig


@hookimpl
def tenant_onboarded(session, tenant, manifest):
    onboarding.onboard(session, tenant, manifest)


@hookimpl
def record_changed(session, record, changes, actor_id):
    conduct.check_failure_photo(session, record, changes)


@hookimpl
def records_evaluated(session, evaluated):
    conduct.repeat_rule(session, evaluated)


@hookimpl
def register_event_types():
    return conduct.EVENT_TYPES


@hookimpl
def register_kpis():
    return kpis.METRICS


@hookimpl
def register_demo_data():
    return [demo.load]
