"""The ``servq deadlines`` commands: run the deadline tick now (assembled by ``cli.py``)."""

from __future__ import annotations

import json

import click

from servq.core.commands import get_app, tenant_by_slug


@click.group()
def deadlines():
    """The deadline tick: breach watch, recurring obligations, webhook retries."""


@deadlines.command("scan")
@click.option("--tenant", "slug", default=None, help="Only this tenant (default: every tenant).")
@click.option("--json", "as_json", is_flag=True, help="Print the counts as JSON.")
def deadlines_scan(slug, as_json):
    """Run one tick now, in this process (for cron, or a deployment without a worker)."""
    from servq.core.deadlines.watch import SCAN_JOB, run_tick
    from servq.core.jobs import run_job

    app = get_app()
    if slug:
        tenant = tenant_by_slug(app, slug)
        results = {slug: run_job(SCAN_JOB, str(tenant.id))}
    else:
        results = run_tick(app)
    if as_json:
        click.echo(json.dumps(results, indent=2, sort_keys=True))
        return
    for name, counts in results.items():
        click.echo(f"{name}: " + ", ".join(f"{k} {v}" for k, v in sorted(counts.items())))
    if not results:
        click.echo("no tenants", err=True)
