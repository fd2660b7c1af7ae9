"""Property management: repairs, complaints, facility patrols and owner satisfaction.

Adds the record kinds ``property.work_order`` and ``property.facility_check``, the
property standards (from the national property management service standard: repairs
answered within 4 hours, urgent ones on site within 30 minutes, …), the recurring
facility obligations of every site, owner data masking, demo data and KPIs.
Guide: plugins/property/README.md.
"""

from __future__ import annotations

from servq import hookimpl
from servq.plugins.property import api, config, demo, kinds, kpis, onboarding


@hookimpl
def register_record_kinds():
    return kinds.record_kinds()


@hookimpl
def register_standards():
    return [("servq.plugins.property", "standards")]


@hookimpl
def register_config_schema():
    return config.PropertyConfig


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
def register_blueprints():
    return [api.blp]
