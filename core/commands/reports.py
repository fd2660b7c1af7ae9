"""The ``servq reports`` commands: reports for the quality meeting (assembled by ``cli.py``)."""

from __future__ import annotations

import click

from servq.core.commands import CliError, get_app, open_session, tenant_by_slug


def output_format(fmt: str | None, output: str | None) -> str:
    """The format to write: ``--format``, else the output file's extension, else JSON.
    An extension that is no report format, or that contradicts ``--format``, is refused
    (a ``report.docx`` holding JSON would only mislead)."""
    from pathlib import PurePath

    from servq.core.reports import FORMATS

    suffix = PurePath(output).suffix.lower().lstrip(".") if output else ""
    if suffix and suffix not in FORMATS:
        raise CliError(f"cannot write a report as .{suffix}: the output file's extension must be one of "
                       f"{', '.join('.' + f for f in FORMATS)}")
    if fmt and suffix and suffix != fmt:
        raise CliError(f"--format {fmt} does not match the output file's extension .{suffix}")
    return fmt or suffix or "json"


@click.group()
def reports():
    """Reports for the quality meeting."""


@reports.command("weekly")
@click.option("--tenant", "slug", required=True, help="Tenant slug.")
@click.option("--week", default=None, help="ISO week, e.g. 2026-W47 (default: last week, tenant's time zone).")
@click.option("--format", "fmt", type=click.Choice(["json", "csv", "xlsx", "pdf"]), default=None,
              help="File format (default: from the output file's extension, else json).")
@click.option("--lang", type=click.Choice(["en", "zh"]), default=None,
              help="Language (default: the tenant's locale).")
@click.option("-o", "--output", type=click.Path(dir_okay=False, writable=True),
              help="Write to this file (needed for xlsx and pdf); default: stdout.")
def reports_weekly(slug, week, fmt, lang, output):
    """Build the weekly quality-meeting report of a tenant (see docs/reports.md)."""
    from servq.core.db import utcnow
    from servq.core.reports import weekly_file
    from servq.core.reports.weekly import WeekError, parse_week, previous_week_key, report_timezone

    fmt = output_format(fmt, output)
    if fmt in ("xlsx", "pdf") and not output:
        raise CliError(f"a {fmt} report is binary: give a file with -o")
    app = get_app()
    tenant = tenant_by_slug(app, slug)
    language = lang or ("zh" if (tenant.locale or "").lower().startswith("zh") else "en")
    with open_session(app, tenant.id) as session:
        try:
            week = week or previous_week_key(utcnow(), report_timezone(session))
            parse_week(week)
        except WeekError as exc:
            raise CliError(str(exc)) from None
        built = weekly_file(session, week, fmt, language)
    if output:
        with open(output, "wb") as fh:
            fh.write(built.content)
        click.echo(f"weekly report {week} of {slug} written to {output} ({len(built.content)} bytes)", err=True)
    else:
        click.echo(built.content, nl=False)  # bytes go to the binary stdout
