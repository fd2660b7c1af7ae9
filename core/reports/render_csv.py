"""The weekly report as one CSV file: one table per section, stacked.

Layout (docs/reports.md): every row's first cell is the section key. Each section starts
with a header row whose first cell is ``section`` and whose other cells are the section's
column keys (stable English keys, whatever the report's language), then one row per
entry, then one empty line before the next section. So ``rows where row[0] == "kpis"``
is the KPI table, and a spreadsheet shows the sections one under the other.
A section with nothing to list has its header row only.

UTF-8 with a byte-order mark, so that spreadsheet programs read Chinese titles right
(read it back with the ``utf-8-sig`` codec). Empty cells are missing values; booleans
are ``true``/``false``; numbers are written as Python prints them (full precision).
"""

from __future__ import annotations

import csv
import io
from typing import Any

from servq.core.reports.tables import sections

CONTENT_TYPE = "text/csv; charset=utf-8"


def render_csv(data: dict) -> bytes:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    for position, section in enumerate(sections(data)):
        if position:
            writer.writerow([])
        writer.writerow(["section", *(column.key for column in section.columns)])
        for row in section.rows:
            writer.writerow([section.key, *(cell(value) for value in row)])
    return out.getvalue().encode("utf-8-sig")


def cell(value: Any) -> str:
    """One value as CSV text (the inverse of what docs/reports.md tells readers)."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)
