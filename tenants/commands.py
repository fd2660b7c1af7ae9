"""The ``servq tenants`` commands: onboard, list, show, export and delete tenants
(assembled by ``cli.py``).
"""

from __future__ import annotations

import json

import click
from sqlalchemy import func, select

from servq.core.commands import CliError, get_app, open_session, tenant_by_slug


@click.group()
def tenants():
    """Onboard, list, show, export and delete tenants."""


@tenants.command("onboard")
@click.argument("file", type=click.File("rb"))
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
@click.option("--demo", is_flag=True, help="Also load the demo data of the tenant's plugins "
              "(their register_demo_data loaders; only when the tenant is new).")
def tenants_onboard(file, as_json, demo):
    """Create or update a tenant from a TOML manifest (idempotent, all-or-nothing)."""
    from servq.tenants.manifest import parse_manifest
    from servq.tenants.onboarding import onboard

    report = onboard(get_app(), parse_manifest(file.read()), demo=demo)
    click.echo(json.dumps(report.as_dict(), indent=2) if as_json else report.summary())


@tenants.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def tenants_list(as_json):
    """List the tenants."""
    from servq.core.models import Tenant

    with open_session(get_app()) as session:
        rows = session.scalars(select(Tenant).order_by(Tenant.slug)).all()
    items = [{"id": str(t.id), "slug": t.slug, "name": t.name, "industry": t.industry,
              "timezone": t.timezone, "locale": t.locale} for t in rows]
    if as_json:
        click.echo(json.dumps(items, indent=2, ensure_ascii=False))
        return
    for t in items:
        click.echo(f"{t['slug']:<24} {t['industry']:<12} {t['timezone']:<20} {t['name']}")
    if not items:
        click.echo("no tenants yet (servq tenants onboard FILE)", err=True)


@tenants.command("show")
@click.argument("slug")
def tenants_show(slug):
    """Show a tenant with counts of its members, sites, staff, records and plugins."""
    from servq.core.models import Membership, Record, Site, Staff, TenantPlugin

    app = get_app()
    tenant = tenant_by_slug(app, slug)
    with open_session(app, tenant.id) as session:
        counts = {name: session.scalar(select(func.count()).select_from(model).where(*where))
                  for name, model, where in (
                      ("members", Membership, ()), ("sites", Site, ()), ("staff", Staff, ()),
                      ("records", Record, (Record.deleted_at.is_(None),)),
                      ("enabled plugins", TenantPlugin, (TenantPlugin.active.is_(True),)))}
        enabled = session.scalars(select(TenantPlugin.plugin_id).where(TenantPlugin.active.is_(True))
                                  .order_by(TenantPlugin.plugin_id)).all()
    for label, value in (("slug", tenant.slug), ("id", tenant.id), ("name", tenant.name),
                         ("industry", tenant.industry), ("timezone", tenant.timezone),
                         ("locale", tenant.locale), ("created", tenant.created_at.isoformat())):
        click.echo(f"{label + ':':<17}{value}")
    for label, value in counts.items():
        click.echo(f"{label + ':':<17}{value}")
    if enabled:
        click.echo(f"{'plugins:':<17}{', '.join(enabled)}")


@tenants.command("export")
@click.argument("slug")
@click.option("-o", "--output", type=click.Path(dir_okay=False, writable=True),
              help="Write to this file instead of stdout.")
def tenants_export(slug, output):
    """Export all of a tenant's data as JSON."""
    from servq.tenants.export import dumps, export_tenant

    app = get_app()
    tenant = tenant_by_slug(app, slug)
    with open_session(app, tenant.id) as session:
        document = export_tenant(session)
    data = dumps(document)
    if document.get("replaced"):
        click.echo(f"servq: replaced {len(document['replaced'])} invalid character value(s) "
                   "(lone surrogates) by U+FFFD; the export lists them under \"replaced\"",
                   err=True)
    if output:
        with open(output, "wb") as fh:
            fh.write(data)
        click.echo(f"exported tenant {slug} to {output} ({len(data)} bytes)", err=True)
    else:
        click.echo(data.decode("utf-8"))


@tenants.command("delete")
@click.argument("slug")
@click.option("--yes", is_flag=True, help="Confirm: deletion is final (export first).")
def tenants_delete(slug, yes):
    """Delete a tenant and all its data."""
    from servq.tenants.offboarding import delete_tenant

    if not yes:
        raise CliError(f"deleting tenant {slug!r} is final: export it first, then repeat with --yes")
    app = get_app()
    tenant = tenant_by_slug(app, slug)
    counts = delete_tenant(app, tenant.id)
    click.echo(f"deleted tenant {slug}: " + ", ".join(f"{n} {t}" for t, n in sorted(counts.items()) if n))
