"""The ``servq kpis`` commands: refresh the daily KPI rollups now (assembled by ``cli.py``)."""

from __future__ import annotations

import json

import click

from servq.core.commands import CliError, get_app, tenant_by_slug


@click.group()
def kpis():
    """KPI rollups (docs/kpi-rollups.md)."""


@kpis.command("refresh")
@click.option("--tenant", "slug", default=None, help="Only this tenant (default: every tenant).")
@click.option("--enqueue", is_flag=True,
              help="Hand each tenant's refresh to the rq workers (one job per tenant) instead of "
                   "running them here; needs REDIS_URL.")
@click.option("--json", "as_json", is_flag=True, help="Print what was done as JSON.")
def kpis_refresh(slug, enqueue, as_json):
    """Bring the daily KPI rollups up to date now (the worker does it every hour).

    One tenant after another, each in its own transaction: a tenant whose refresh fails
    is rolled back and named on stderr, the others are refreshed, and the exit status is
    1 (running it again retries it; a refresh is idempotent)."""
    from servq.core.kpis.rollups import refresh_all

    app = get_app()
    if enqueue and app.extensions.get("servq.queue") is None:
        raise CliError("--enqueue needs REDIS_URL (without Redis, jobs run here)")
    tenants = [(tenant_by_slug(app, slug).id, slug)] if slug else None
    done = refresh_all(app, tenants=tenants, enqueue=enqueue)
    if enqueue:
        summary = done.as_dict()
        if as_json:
            click.echo(json.dumps(summary, indent=2, sort_keys=True))
        else:
            click.echo(f"{done.enqueued} tenant refresh(es) enqueued, {done.pending} still pending "
                       f"from an earlier run")
        return
    results = done.results
    if as_json:
        click.echo(json.dumps(results, indent=2, sort_keys=True))
    else:
        for name, report in results.items():
            click.echo(f"{name}: rolled until {report['rolled_until']}, {report['days']} day(s) "
                       f"({report['dirty']} dirty) in {report['statements']} statement(s), "
                       f"{report['rows']} row(s){', rebuilt' if report['rebuilt'] else ''}")
        if not done.tenants:
            click.echo("no tenants", err=True)
    _fail_on(done, "refresh")


def _fail_on(done, what: str) -> None:
    """Exit 1 naming the tenants whose job failed (after every other tenant's ran)."""
    if done.failed:
        for name, error in sorted(done.failed.items()):
            click.echo(f"{name}: {what} failed: {error}", err=True)
        raise CliError(f"{what} failed for {len(done.failed)} of {done.tenants} tenant(s); "
                       "the others are done; run it again to retry")
