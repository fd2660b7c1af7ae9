"""The weekly report as an Excel workbook (openpyxl): one sheet per section, native charts.

Every sheet holds one table: its header in row 1 (translated labels), one entry per row
from row 2 on, and a note under the table when the list was cut short. Values are the
JSON report's, typed for Excel: percentages as fractions formatted ``0.0%`` (the JSON's
``87.5`` is the cell ``0.875`` shown as 87.5%), durations as days formatted ``[h]:mm``
(Excel's durations), instants as real Excel dates in the tenant's time zone (Excel has
no time zones: the wall-clock time of the report's zone, named in the summary), scores
with one decimal, counts whole; enumerations (units, statuses, sources, best/worst) in
the report's language; missing values as empty cells. The KPI sheet carries a line chart of the percentage KPIs over the weeks,
the failures sheet a Pareto chart: failure bars with the cumulative share as a line on a
second axis. Charts are Excel's own (they refer to the cells), not pictures.

The file is reproducible: document properties and the ZIP entries carry the report's
as-of instant, not the time of writing, so the same report gives the same bytes.
"""

from __future__ import annotations

import io
from datetime import datetime
from zoneinfo import ZoneInfo
from zipfile import ZIP_DEFLATED, ZipFile, ZipInfo

from openpyxl import Workbook
from openpyxl.chart import BarChart, LineChart, Reference, Series
from openpyxl.styles import Alignment, Font
from openpyxl.utils import get_column_letter
from openpyxl.writer.excel import ExcelWriter

from servq.core.reports.tables import Section, sections
from servq.core.reports.weekly import labels, value_label

CONTENT_TYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
#: Widest a column is made, in characters.
MAX_WIDTH = 60


def render_xlsx(data: dict) -> bytes:
    t = labels(data["language"])
    workbook = Workbook()
    workbook.remove(workbook.active)
    for section in sections(data):
        sheet = workbook.create_sheet(_sheet_title(section.title))
        _table(sheet, section, t, data["timezone"])
        if section.key == "kpis":
            _trend_chart(sheet, data, t)
        elif section.key == "top_failures" and section.rows:
            _pareto_chart(sheet, len(section.rows), t)
    as_of = datetime.fromisoformat(data["as_of"]).replace(tzinfo=None)
    workbook.properties.title = f"{t['report']} {data['week']}"
    workbook.properties.creator = "servq"
    workbook.properties.created = workbook.properties.modified = as_of
    buffer = io.BytesIO()
    ExcelWriter(workbook, _StampedZip(buffer, as_of)).save()
    return buffer.getvalue()


def _sheet_title(title: str) -> str:
    for bad in "[]:*?/\\":
        title = title.replace(bad, " ")
    return title[:31]


#: Number formats by column key (and by KPI unit on the KPI sheet).
PERCENT, DURATION, DATE, ONE_DECIMAL, WHOLE = "0.0%", "[h]:mm", "yyyy-mm-dd hh:mm", "0.0", "0"
COLUMN_FORMATS = {"pass_rate": PERCENT, "share": PERCENT, "cumulative_share": PERCENT,
                  "score": ONE_DECIMAL, "due_at": DATE, "stopped_at": DATE, "created_at": DATE,
                  "failures": WHOLE, "records": WHOLE, "age_days": WHOLE, "rank": WHOLE}
UNIT_FORMATS = {"percent": PERCENT, "seconds": DURATION, "count": WHOLE, "score": ONE_DECIMAL,
                "points": ONE_DECIMAL, "per_1000": ONE_DECIMAL}
#: Columns holding an enumeration's value, printed in the report's language.
ENUMERATIONS = {"unit": "unit", "status": "status", "source": "source", "position": "position"}


def excel_value(value, number_format: str | None, zone: ZoneInfo):
    """A report value as the cell Excel should hold for ``number_format``."""
    if value is None or isinstance(value, bool):
        return value
    if number_format == PERCENT and isinstance(value, (int, float)):
        return value / 100
    if number_format == DURATION and isinstance(value, (int, float)):
        return value / 86400
    if number_format == DATE and isinstance(value, str):
        return datetime.fromisoformat(value).astimezone(zone).replace(tzinfo=None)
    return value


def _table(sheet, section: Section, t: dict, tz: str) -> None:
    zone = ZoneInfo(tz)
    sheet.append([column.label for column in section.columns])
    for cell in sheet[1]:
        cell.font = Font(bold=True)
        cell.alignment = Alignment(wrap_text=True, vertical="top")
    unit_at = next((i for i, c in enumerate(section.columns) if c.key == "unit"), None)
    for row in section.rows:
        formats = []
        for index, column in enumerate(section.columns):
            fmt = COLUMN_FORMATS.get(column.key)
            if section.key == "kpis" and unit_at is not None and index > unit_at:
                fmt = UNIT_FORMATS.get(row[unit_at])  # the weeks, the change, the average
                if fmt == WHOLE and column.key == "average_previous":
                    fmt = ONE_DECIMAL  # a mean of counts has decimals
            formats.append(fmt)
        if section.key == "summary" and row[0] == "as_of":
            formats[1] = DATE
        values = [excel_value(value, fmt, zone) for value, fmt in zip(row, formats)]
        for index, column in enumerate(section.columns):
            if column.key in ENUMERATIONS:
                values[index] = value_label(t, ENUMERATIONS[column.key], values[index])
        if section.key == "summary":
            values[0] = t.get(values[0], values[0])
        sheet.append(values)
        for cell, fmt in zip(sheet[sheet.max_row], formats):
            if fmt:
                cell.number_format = "+0.0%;-0.0%;0.0%" if (fmt == PERCENT and section.key == "kpis"
                                                            and section.columns[cell.column - 1].key == "change") else fmt
    if section.note:
        sheet.cell(row=len(section.rows) + 3, column=1, value=section.note).font = Font(italic=True)
    sheet.freeze_panes = "A2"
    for index, column in enumerate(section.columns, start=1):
        longest = max([len(str(column.label))] + [min(len(str(r[index - 1])), 20) if column.key in COLUMN_FORMATS
                                                   else len(str(r[index - 1])) for r in section.rows
                                                   if r[index - 1] is not None])
        sheet.column_dimensions[get_column_letter(index)].width = min(MAX_WIDTH, max(8, longest + 2))


def _trend_chart(sheet, data: dict, t: dict) -> None:
    """Line chart of the percentage KPIs (score, pass rate, attainment) over the weeks."""
    weeks = len(data["weeks"])
    first_week_col = 4  # metric, title, unit, then the weeks
    rows = [index for index, row in enumerate(data["kpis"], start=2) if row["unit"] == "percent"]
    if not rows:
        return
    chart = LineChart()
    chart.title = t["trend"]
    chart.height, chart.width = 8, 16
    chart.y_axis.title = "%"
    # The cells hold fractions shown as percentages (0.875 is 87.5%).
    chart.y_axis.scaling.min, chart.y_axis.scaling.max = 0, 1
    chart.y_axis.number_format = "0%"
    for row in rows:
        values = Reference(sheet, min_col=first_week_col, max_col=first_week_col + weeks - 1,
                           min_row=row, max_row=row)
        series = Series(values, title=sheet.cell(row=row, column=2).value)
        series.marker.symbol = "circle"
        chart.series.append(series)
    chart.set_categories(Reference(sheet, min_col=first_week_col, max_col=first_week_col + weeks - 1,
                                   min_row=1, max_row=1))
    _show_axes(chart)
    sheet.add_chart(chart, f"A{len(data['kpis']) + 5}")


def _pareto_chart(sheet, count: int, t: dict) -> None:
    """Failure bars by item (most first) and the cumulative share as a line (right axis)."""
    bars = BarChart()
    bars.type = "col"
    bars.title = t["pareto"]
    bars.height, bars.width = 9, 18
    bars.add_data(Reference(sheet, min_col=4, min_row=1, max_row=count + 1), titles_from_data=True)
    bars.set_categories(Reference(sheet, min_col=3, min_row=2, max_row=count + 1))
    bars.y_axis.title = t["failures"]
    line = LineChart()
    line.add_data(Reference(sheet, min_col=6, min_row=1, max_row=count + 1), titles_from_data=True)
    line.y_axis.axId = 200
    line.y_axis.title = "%"
    line.y_axis.scaling.min, line.y_axis.scaling.max = 0, 1
    line.y_axis.number_format = "0%"
    line.y_axis.crosses = "max"
    _show_axes(bars)
    _show_axes(line)
    bars += line
    sheet.add_chart(bars, f"A{count + 5}")


def _show_axes(chart) -> None:
    # openpyxl 3.1 writes axes as deleted unless told otherwise; Excel then hides them.
    chart.x_axis.delete = False
    chart.y_axis.delete = False


class _StampedZip(ZipFile):
    """A ZIP whose entries carry a fixed time (the report's), for reproducible files."""

    def __init__(self, file, stamp: datetime):
        super().__init__(file, "w", ZIP_DEFLATED, allowZip64=True)
        self._stamp = (max(stamp.year, 1980), stamp.month, stamp.day, stamp.hour, stamp.minute,
                       stamp.second)

    def writestr(self, zinfo_or_arcname, data, compress_type=None, compresslevel=None):
        if isinstance(zinfo_or_arcname, str):
            info = ZipInfo(zinfo_or_arcname, date_time=self._stamp)
            info.compress_type = ZIP_DEFLATED
            info.external_attr = 0o600 << 16
            zinfo_or_arcname = info
        super().writestr(zinfo_or_arcname, data, compress_type, compresslevel)

    def write(self, filename, arcname=None, compress_type=None, compresslevel=None):
        # openpyxl streams each worksheet through a temporary file.
        with open(filename, "rb") as fh:
            self.writestr(arcname or str(filename), fh.read())
