"""The ``servq deadlines`` commands: run the deadline tick now (assembled by ``cli.py``)."""

from __future__ import annotations

import json

import click

from servq.core.commands import CliError, get_app, tenant_by_slug
from servq.core.commands.kpis import _fail_on


@click.group()
def deadlines():
    """The deadline tick: breach watch, recurring obligations, webhook retries."""


@deadlines.command("scan")
@click.option("--tenant", "slug", default=None, help="Only this tenant (default: every tenant).")
@click.option("--enqueue", is_flag=True,
              help="Hand each tenant's scan to the rq workers (one job per tenant) instead of "
                   "running them here; needs REDIS_URL.")
@click.option("--json", "as_json", is_flag=True, help="Print the counts as JSON.")
def deadlines_scan(slug, enqueue, as_json):
    """Run one tick now, in this process (for cron, or a deployment without a worker).

    One tenant after another, each in its own transaction: a tenant whose scan fails is
    rolled back and named on stderr, the others are scanned, and the exit status is 1
    (the next scan retries it)."""
    from servq.core.deadlines.watch import run_tick

    app = get_app()
    if enqueue and app.extensions.get("servq.queue") is None:
        raise CliError("--enqueue needs REDIS_URL (without Redis, jobs run here)")
    tenants = [(tenant_by_slug(app, slug).id, slug)] if slug else None
    done = run_tick(app, fan_out=enqueue, tenants=tenants)
    if enqueue:
        if as_json:
            click.echo(json.dumps(done.as_dict(), indent=2, sort_keys=True))
        else:
            click.echo(f"{done.enqueued} tenant scan(s) enqueued, {done.pending} still pending "
                       f"from an earlier tick")
        return
    results = done.results
    if as_json:
        click.echo(json.dumps(results, indent=2, sort_keys=True))
    else:
        for name, counts in results.items():
            click.echo(f"{name}: " + ", ".join(f"{k} {v}" for k, v in sorted(counts.items())))
        if not done.tenants:
            click.echo("no tenants", err=True)
    _fail_on(done, "scan")
