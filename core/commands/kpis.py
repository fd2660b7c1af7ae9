"""The ``servq kpis`` commands: refresh the daily KPI rollups now (assembled by ``cli.py``)."""

from __future__ import annotations

import json

import click
from sqlalchemy import select

from servq.core.commands import get_app, open_session, tenant_by_slug


@click.group()
def kpis():
    """KPI rollups (docs/kpi-rollups.md)."""


@kpis.command("refresh")
@click.option("--tenant", "slug", default=None, help="Only this tenant (default: every tenant).")
@click.option("--json", "as_json", is_flag=True, help="Print what was done as JSON.")
def kpis_refresh(slug, as_json):
    """Bring the daily KPI rollups up to date now (the worker does it every hour)."""
    from servq.core.kpis.rollups import refresh_kpi_rollups
    from servq.core.models import Tenant

    app = get_app()
    if slug:
        tenants = [(tenant_by_slug(app, slug).id, slug)]
    else:
        with open_session(app) as session:
            tenants = session.execute(select(Tenant.id, Tenant.slug).order_by(Tenant.slug)).all()
    results = {}
    for tenant_id, name in tenants:
        with open_session(app, tenant_id) as session:
            results[name] = refresh_kpi_rollups(session)
    if as_json:
        click.echo(json.dumps(results, indent=2, sort_keys=True))
        return
    for name, report in results.items():
        click.echo(f"{name}: rolled until {report['rolled_until']}, {report['days']} day(s) "
                   f"({report['dirty']} dirty) in {report['statements']} statement(s), "
                   f"{report['rows']} row(s){', rebuilt' if report['rebuilt'] else ''}")
    if not results:
        click.echo("no tenants", err=True)
