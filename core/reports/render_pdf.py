"""The weekly report as a PDF (reportlab): tables, a KPI trend chart and a Pareto chart.

A4 landscape. Every text is set in one embedded font, WenQuanYi Micro Hei (Chinese and
Latin in one face, "·" and "–" included), from the ``paperang-p2-fonts-cjk`` package (a
dependency: the font file ships in a Python package, so no system font and no viewer's
Asian font pack is needed). Only the glyphs used are embedded (a subset), so a report
stays small. ``SERVQ_REPORT_FONT`` may name another TrueType file (``.ttf``, or ``.ttc``:
its first face) to use instead; a missing font is an error that says which, never a
PDF whose Chinese shows as empty boxes.

The numbers are the report dict's, formatted for reading: percentages and scores with
one decimal, durations in hours. Built in reportlab's *invariant* mode (fixed creation
date and document id), so the same report gives the same bytes.
"""

from __future__ import annotations

import io
import math
import os
from importlib import resources
from datetime import datetime
from typing import Any
from xml.sax.saxutils import escape
from zoneinfo import ZoneInfo

from reportlab.graphics.charts.barcharts import VerticalBarChart
from reportlab.graphics.charts.legends import Legend
from reportlab.graphics.charts.linecharts import HorizontalLineChart
from reportlab.graphics.widgets.markers import makeMarker
from reportlab.graphics.shapes import Drawing, String
from reportlab.lib import colors
from reportlab.lib.pagesizes import A4, landscape
from reportlab.lib.styles import ParagraphStyle, getSampleStyleSheet
from reportlab.lib.units import mm
from reportlab.pdfbase import pdfmetrics
from reportlab.pdfbase.ttfonts import TTFont
from reportlab.platypus import (KeepTogether, Paragraph, SimpleDocTemplate, Spacer, Table,
                                TableStyle)

from servq.core.reports.tables import Section, sections
from servq.core.reports.weekly import labels, value_label

CONTENT_TYPE = "application/pdf"
#: The name the embedded font is registered under (one face for every script).
FONT = "ServqSans"
#: The environment variable that may name another TrueType font file.
FONT_SETTING = "SERVQ_REPORT_FONT"
PAGE = landscape(A4)
MARGIN = 15 * mm
WIDTH = PAGE[0] - 2 * MARGIN
PALETTE = (colors.HexColor("#1f77b4"), colors.HexColor("#d62728"), colors.HexColor("#2ca02c"),
           colors.HexColor("#9467bd"), colors.HexColor("#ff7f0e"), colors.HexColor("#8c564b"))
#: Longest text kept in a chart's axis label, and in a legend entry (which has room).
LABEL_CHARS = 24
LEGEND_CHARS = 44


def font_file() -> str:
    """The TrueType file the report is set in: ``SERVQ_REPORT_FONT``, else WenQuanYi Micro
    Hei of the ``paperang-p2-fonts-cjk`` package."""
    chosen = os.environ.get(FONT_SETTING)
    if chosen:
        if not os.path.isfile(chosen):
            raise RuntimeError(f"{FONT_SETTING}={chosen!r}: no such font file")
        return chosen
    try:
        package = resources.files("paperang_p2_fonts_cjk")
    except ModuleNotFoundError:
        raise RuntimeError("the PDF report's font is missing: install the package "
                           "paperang-p2-fonts-cjk (a dependency of servq), or set "
                           f"{FONT_SETTING} to a TrueType font with Chinese glyphs") from None
    return str(package / "fonts" / "wqy-microhei.ttc")


def _register_fonts() -> None:
    if FONT not in pdfmetrics.getRegisteredFontNames():
        pdfmetrics.registerFont(TTFont(FONT, font_file(), subfontIndex=0))


class _Styles:
    """Paragraph styles of one report: the base font follows the report's language."""

    def __init__(self, language: str):
        base = FONT
        self.base = base
        sample = getSampleStyleSheet()
        self.title = ParagraphStyle("title", parent=sample["Title"], fontName=base, fontSize=18, leading=22)
        self.heading = ParagraphStyle("heading", parent=sample["Heading2"], fontName=base, fontSize=13,
                                      leading=16, spaceBefore=8, spaceAfter=4)
        self.body = ParagraphStyle("body", parent=sample["BodyText"], fontName=base, fontSize=9, leading=11)
        self.cell = ParagraphStyle("cell", parent=self.body, fontSize=7.5, leading=9)
        self.head = ParagraphStyle("head", parent=self.cell, textColor=colors.white)
        self.note = ParagraphStyle("note", parent=self.body, fontSize=8, textColor=colors.grey)
        if language == "zh":  # Chinese has no spaces: a line may break between any two characters
            for style in (self.body, self.cell, self.head, self.note):
                style.wordWrap = "CJK"

    def para(self, text: Any, style: ParagraphStyle) -> Paragraph:
        text = "" if text is None else str(text)
        return Paragraph(escape(text), style)


def render_pdf(data: dict) -> bytes:
    _register_fonts()
    t = labels(data["language"])
    styles = _Styles(data["language"])
    buffer = io.BytesIO()
    doc = SimpleDocTemplate(buffer, pagesize=PAGE, leftMargin=MARGIN, rightMargin=MARGIN,
                            topMargin=MARGIN, bottomMargin=MARGIN, invariant=1,
                            title=f"{t['report']} {data['week']}", author="servq",
                            creator="servq", subject=data["tenant"]["name"])
    by_key = {section.key: section for section in sections(data)}
    story: list = [
        styles.para(f"{t['report']} · {data['tenant']['name']} · {data['week']}", styles.title),
        styles.para(f"{t['period']}: {data['period']['start_date']} – {data['period']['end_date']} "
                    f"({data['timezone']}) · {t['as_of']}: {local_time(data['as_of'], data['timezone'])}",
                    styles.body),
        Spacer(1, 4 * mm),
        styles.para(t["kpis"], styles.heading),
        _kpi_table(data, styles, t),
    ]
    _note(story, by_key["kpis"], styles)
    trend = _trend_chart(data, styles, t)
    if trend is not None:
        story += [Spacer(1, 3 * mm), trend]
    failures = by_key["top_failures"]
    block = [styles.para(failures.title, styles.heading)]
    if failures.rows:
        block.append(_pareto_chart(data, styles, t))
    story.append(KeepTogether(block))
    story += _section_table(failures, styles, t, data["timezone"])
    for key in ("breaches", "open_actions", "sites", "staff"):
        story.append(styles.para(by_key[key].title, styles.heading))
        story += _section_table(by_key[key], styles, t, data["timezone"])
    doc.build(story)
    return buffer.getvalue()


# -- tables ---------------------------------------------------------------------------------


def formatted(value: Any, unit: str | None = None, t: dict | None = None) -> str:
    """A value as the PDF prints it."""
    if value is None:
        return "–"
    if isinstance(value, bool):
        return (t or {}).get("yes" if value else "no", str(value).lower())
    if isinstance(value, float):
        if unit == "seconds":
            return f"{value / 3600:.1f} h"
        if unit in ("count",) and value.is_integer():
            return f"{int(value)}"
        return f"{value:.1f}" if unit in ("percent", "score", "per_1000", "per_10000", None) else f"{value:.2f}"
    if isinstance(value, int) and unit == "seconds":
        return f"{value / 3600:.1f} h"
    return str(value)


def _grid(rows: list[list], styles: _Styles, widths: list[float] | None = None) -> Table:
    table = Table(rows, colWidths=widths, repeatRows=1, hAlign="LEFT")
    table.setStyle(TableStyle([
        ("BACKGROUND", (0, 0), (-1, 0), colors.HexColor("#34495e")),
        ("GRID", (0, 0), (-1, -1), 0.25, colors.HexColor("#bdc3c7")),
        ("ROWBACKGROUNDS", (0, 1), (-1, -1), [colors.white, colors.HexColor("#f4f6f7")]),
        ("VALIGN", (0, 0), (-1, -1), "TOP"),
        ("LEFTPADDING", (0, 0), (-1, -1), 3), ("RIGHTPADDING", (0, 0), (-1, -1), 3),
    ]))
    return table


def _kpi_table(data: dict, styles: _Styles, t: dict) -> Table:
    weeks = data["weeks"]
    header = [t["metric"], *weeks, t["change"], t["average"]]
    rows = [[styles.para(h, styles.head) for h in header]]
    for row in data["kpis"]:
        rows.append([styles.para(row["title"], styles.cell),
                     *(styles.para(formatted(row["values"][w], row["unit"]), styles.cell) for w in weeks),
                     styles.para(_signed(row["change"], row["unit"]), styles.cell),
                     styles.para(formatted(row["average_previous"], row["unit"]), styles.cell)])
    if len(rows) == 1:
        rows.append([styles.para(t["none"], styles.cell)] + [""] * (len(header) - 1))
    first = 70 * mm
    rest = (WIDTH - first) / (len(header) - 1)
    return _grid(rows, styles, [first] + [rest] * (len(header) - 1))


def _signed(value: Any, unit: str) -> str:
    text = formatted(value, unit)
    return f"+{text}" if isinstance(value, (int, float)) and value > 0 else text


def local_time(text: str | None, tz: str) -> str | None:
    """An ISO instant of the report as the tenant's wall-clock time, ``2026-03-03 15:00``."""
    if not text:
        return text
    return datetime.fromisoformat(text).astimezone(ZoneInfo(tz)).strftime("%Y-%m-%d %H:%M")


#: Columns holding instants, printed in the tenant's time zone.
INSTANTS = ("due_at", "stopped_at", "created_at")


def _section_table(section: Section, styles: _Styles, t: dict, tz: str) -> list:
    if not section.rows:
        out = [styles.para(t["none"] if section.note is None else section.note, styles.note)]
        return out
    units = {"score": "score", "pass_rate": "percent", "share": "percent", "cumulative_share": "percent"}
    printed = [index for index, column in enumerate(section.columns) if column.printed]
    columns = [section.columns[index] for index in printed]
    header = [styles.para(column.label, styles.head) for column in columns]
    body = []
    for row in section.rows:
        cells = []
        for column, value in zip(columns, (row[index] for index in printed)):
            if column.key in ("position", "status", "source"):
                value = value_label(t, column.key, value)
            elif column.key in INSTANTS:
                value = local_time(value, tz)
            cells.append(styles.para(formatted(value, units.get(column.key), t), styles.cell))
        body.append(cells)
    out = [_grid([header, *body], styles, _widths(columns))]
    if section.note:
        out.append(styles.para(section.note, styles.note))
    return out


def _widths(columns: list) -> list[float]:
    """Wide columns for references and titles, narrow ones for numbers."""
    wide = {"title": 3.0, "record": 2.2, "action": 1.0, "item": 2.0, "name": 2.0, "due_at": 1.6,
            "stopped_at": 1.6, "created_at": 1.6, "site": 1.6, "kind": 1.2, "value": 4.0,
            "position": 0.7, "rank": 0.6}
    weights = [wide.get(column.key, 1.0) for column in columns]
    return [WIDTH * w / sum(weights) for w in weights]


def _note(story: list, section: Section, styles: _Styles) -> None:
    if section.note:
        story.append(styles.para(section.note, styles.note))


# -- charts ---------------------------------------------------------------------------------


def _short(text: str, limit: int = LABEL_CHARS) -> str:
    return text if len(text) <= limit else text[:limit - 1] + "…"


def _trend_chart(data: dict, styles: _Styles, t: dict) -> Drawing | None:
    """The percentage KPIs (score, pass rate, attainment …) week by week."""
    rows = [row for row in data["kpis"] if row["unit"] == "percent"
            and any(row["values"][w] is not None for w in data["weeks"])]
    if not rows:
        return None
    drawing = Drawing(WIDTH, 62 * mm)
    chart = HorizontalLineChart()
    chart.x, chart.y, chart.width, chart.height = 15 * mm, 10 * mm, WIDTH * 0.62, 45 * mm
    # reportlab draws None as a gap in the line.
    chart.data = [tuple(row["values"][w] for w in data["weeks"]) for row in rows]
    chart.categoryAxis.categoryNames = list(data["weeks"])
    chart.categoryAxis.labels.fontName = styles.base
    chart.categoryAxis.labels.fontSize = 7
    chart.valueAxis.valueMin, chart.valueAxis.valueMax, chart.valueAxis.valueStep = 0, 100, 20
    chart.valueAxis.labels.fontSize = 7
    chart.valueAxis.labels.fontName = styles.base
    chart.joinedLines = 1
    for index in range(len(rows)):
        chart.lines[index].strokeColor = PALETTE[index % len(PALETTE)]
        chart.lines[index].strokeWidth = 1.5
        # A marker on every value: a week alone between gaps is still seen.
        chart.lines[index].symbol = makeMarker("FilledCircle", size=4,
                                               fillColor=PALETTE[index % len(PALETTE)])
    chart.lineLabelFormat = None
    drawing.add(chart)
    drawing.add(String(15 * mm, 57 * mm, t["trend"], fontName=styles.base, fontSize=10))
    legend = Legend()
    legend.x, legend.y = 15 * mm + WIDTH * 0.62 + 10 * mm, 50 * mm
    legend.fontName = styles.base
    legend.fontSize = 7
    legend.alignment = "right"
    legend.dy = legend.dx = 3 * mm  # swatch size
    legend.deltay = 5 * mm
    legend.colorNamePairs = [(PALETTE[i % len(PALETTE)], _short(row["title"], LEGEND_CHARS))
                             for i, row in enumerate(rows)]
    drawing.add(legend)
    return drawing


def _pareto_chart(data: dict, styles: _Styles, t: dict) -> Drawing:
    """Failure bars by item, most first, with the cumulative share drawn over them on a
    0-100 % scale (right axis)."""
    items = data["top_failures"]["items"]
    names = [_short(item["title"]) for item in items]
    font = styles.base
    drawing = Drawing(WIDTH, 75 * mm)
    x, y, width, height = 15 * mm, 22 * mm, WIDTH - 35 * mm, 45 * mm
    bars = VerticalBarChart()
    bars.x, bars.y, bars.width, bars.height = x, y, width, height
    bars.data = [tuple(item["failures"] for item in items)]
    bars.bars[0].fillColor = PALETTE[0]
    bars.categoryAxis.categoryNames = names
    bars.categoryAxis.labels.fontName = font
    bars.categoryAxis.labels.fontSize = 6.5
    bars.categoryAxis.labels.angle = 30
    bars.categoryAxis.labels.boxAnchor = "ne"
    # Whole failures on the left axis: about five steps, never fractions.
    top = max(item["failures"] for item in items)
    step = max(1, math.ceil(top / 5))
    bars.valueAxis.valueMin, bars.valueAxis.valueMax, bars.valueAxis.valueStep = 0, step * math.ceil(top / step), step
    bars.valueAxis.labels.fontSize = 7
    drawing.add(bars)
    line = HorizontalLineChart()
    line.x, line.y, line.width, line.height = x, y, width, height
    line.data = [tuple(item["cumulative_share"] for item in items)]
    line.lines[0].strokeColor = PALETTE[1]
    line.lines[0].strokeWidth = 1.5
    line.lines[0].symbol = makeMarker("FilledCircle", size=4, fillColor=PALETTE[1])
    line.joinedLines = 1
    line.categoryAxis.visible = 0
    line.categoryAxis.categoryNames = names
    line.valueAxis.valueMin, line.valueAxis.valueMax, line.valueAxis.valueStep = 0, 100, 20
    line.valueAxis.joinAxisMode = "right"
    line.valueAxis.labels.fontSize = 7
    line.valueAxis.labelTextFormat = "%d%%"
    # The right axis's labels go right of its line, clear of the last bar.
    line.valueAxis.labels.boxAnchor = "w"
    line.valueAxis.labels.dx = 3
    line.valueAxis.labels.fontName = styles.base
    bars.valueAxis.labels.fontName = styles.base
    drawing.add(line)
    drawing.add(String(x, y + height + 4 * mm, t["pareto"], fontName=styles.base, fontSize=10))
    legend = Legend()
    legend.x, legend.y = x + width - 80 * mm, y + height + 8 * mm
    legend.fontName = styles.base
    legend.fontSize = 7
    legend.alignment = "right"  # the swatch, then its text
    legend.dy = legend.dx = 3 * mm
    legend.columnMaximum = 1
    legend.deltax = 40 * mm
    legend.colorNamePairs = [(PALETTE[0], t["failures"]), (PALETTE[1], t["cumulative_share"])]
    drawing.add(legend)
    return drawing
