"""The ``servq records`` commands: quality records in bulk (assembled by ``cli.py``)."""

from __future__ import annotations

import os
import sys

import click

from servq.core.commands import CliError, get_app, tenant_by_slug


@click.group()
def records():
    """Quality records in bulk."""


@records.command("import")
@click.option("--tenant", "slug", required=True, help="Tenant slug.")
@click.argument("file", type=click.File("rb"))
@click.option("--format", "fmt", type=click.Choice(["jsonl", "csv"]), default=None,
              help="File format (default: csv for *.csv, else jsonl).")
@click.option("--chunk", type=click.IntRange(1, 100_000), default=1000, show_default=True,
              help="Records written per bulk statement.")
@click.option("--dry-run", is_flag=True, help="Validate and score every record, write nothing.")
def records_import(slug, file, fmt, chunk, dry_run):
    """Import records from a JSON Lines or CSV FILE ('-' for stdin), validated and scored
    like POST /records; all or nothing: one bad line and nothing is written."""
    from servq.core.records.formats import ImportRefused, guess_format
    from servq.core.records.ingest import import_file

    app = get_app()
    tenant = tenant_by_slug(app, slug)
    fmt = fmt or guess_format(file.name)
    try:
        size = os.fstat(file.fileno()).st_size if file.seekable() else 0
    except (OSError, ValueError):  # stdin or a stream without a file behind it
        size = 0
    with click.progressbar(length=size or 1, label=f"importing into {slug}", file=sys.stderr,
                           hidden=not size or not sys.stderr.isatty()) as bar:
        def progress(_records: int) -> None:
            if size:
                bar.update(file.tell() - bar.pos)

        try:
            report = import_file(app, tenant.id, file, fmt, chunk=chunk, dry_run=dry_run,
                                 progress=progress)
        except ImportRefused as refused:
            bar.render_finish()
            if refused.header:
                raise CliError(f"{refused.header}; nothing was written")
            for error in refused.errors:
                for message in error.messages():
                    click.echo(f"line {error.line}: {message}", err=True)
            more = " (stopped reading there)" if refused.truncated else ""
            raise CliError(f"{len(refused.errors)} bad line(s){more}; nothing was written")
        bar.update(max(size, 1) - bar.pos)
    click.echo(report.summary())
