"""Reports for the quality meeting: the weekly report and its file formats.

:func:`weekly.build_weekly` gathers the data (one dict); :func:`render` lays it out as
JSON, CSV, an Excel workbook or a PDF. :func:`weekly_file` does both, for the API, the
``servq reports weekly`` command and the report job (:mod:`core.reports.plugin`), which
therefore produce the same file. See docs/reports.md.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Callable

FORMATS = ("json", "csv", "xlsx", "pdf")


@dataclass(frozen=True)
class ReportFile:
    content: bytes
    content_type: str
    filename: str


def _json(data: dict) -> bytes:
    return json.dumps(data, ensure_ascii=False, indent=2).encode("utf-8")


def _renderer(fmt: str) -> tuple[Callable[[dict], bytes], str]:
    """The renderer of ``fmt`` and its content type (imported on use: reportlab and
    openpyxl are only loaded by the processes that build those files)."""
    if fmt == "json":
        return _json, "application/json"
    if fmt == "csv":
        from servq.core.reports.render_csv import CONTENT_TYPE, render_csv

        return render_csv, CONTENT_TYPE
    if fmt == "xlsx":
        from servq.core.reports.render_xlsx import CONTENT_TYPE, render_xlsx

        return render_xlsx, CONTENT_TYPE
    if fmt == "pdf":
        from servq.core.reports.render_pdf import CONTENT_TYPE, render_pdf

        return render_pdf, CONTENT_TYPE
    raise ValueError(f"unknown report format {fmt!r}; valid: {', '.join(FORMATS)}")


def render(data: dict, fmt: str) -> ReportFile:
    """The report ``data`` as a file of format ``fmt``."""
    renderer, content_type = _renderer(fmt)
    name = f"servq-{data['report']}-{data['tenant']['slug']}-{data['week']}-{data['language']}.{fmt}"
    return ReportFile(renderer(data), content_type, name)


def weekly_file(session, week: str, fmt: str, language: str, now: datetime | None = None) -> ReportFile:
    """Build the session's tenant's weekly report for ``week`` and render it."""
    from servq.core.reports.weekly import build_weekly

    return render(build_weekly(session, week, language, now), fmt)


__all__ = ["FORMATS", "ReportFile", "render", "weekly_file"]
