"""After-sales service: tickets that loop back when the customer is not satisfied, visits
confirmed and signed, installations accepted in five days, daily reviews and call QA.

Adds the record kinds ``aftersales.ticket``, ``aftersales.visit``,
``aftersales.installation``, ``aftersales.daily_review`` and ``aftersales.call``, their
standards (call QA by deductions included), the daily review obligation, the manual call
review quota, KPIs and demo data. Guide: plugins/aftersales/README.md.
"""

from __future__ import annotations

from servq import hookimpl
from servq.plugins.aftersales import config, demo, hooks, kinds, kpis, onboarding


@hookimpl
def register_record_kinds():
    return kinds.record_kinds()


@hookimpl
def register_standards():
    return [("servq.plugins.aftersales", "standards")]


@hookimpl
def register_config_schema():
    return config.AftersalesConfig


@hookimpl
def tenant_onboarded(session, tenant, manifest):
    onboarding.onboard(session, tenant, manifest)


@hookimpl
def record_created(session, record, actor_id):
    hooks.on_created(session, record, actor_id)


record_created.wants = hooks.wants


@hookimpl
def record_changed(session, record, changes, actor_id):
    hooks.on_changed(session, record, changes, actor_id)


@hookimpl
def register_demo_data():
    return [demo.load]


@hookimpl
def register_kpis():
    return kpis.METRICS
