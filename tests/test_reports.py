"""The weekly quality-meeting report: its numbers (computed again here from the rows the
test creates), its four formats (the PDF renders, the workbook reads back, the CSV
parses), the job path, the command line, bad input and tenancy."""

from __future__ import annotations

import csv
import io
import uuid
import zipfile
from xml.etree import ElementTree
from datetime import datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pypdfium2
import pytest
import time_machine
from click.testing import CliRunner
from openpyxl import load_workbook
from sqlalchemy import select, update

from servq import cli
from servq.core.db import utcnow
from servq.core.jobs import make_worker, run_job
from servq.core.models import Action, Clock, Evaluation, Record, ReportRun
from servq.core.reports.weekly import previous_week_key, week_bounds
from tests.test_evaluations import put_standard

URL = "/api/v1/reports/weekly"
RUNS = "/api/v1/reports/runs"
RECORDS = "/api/v1/records"
CODE = "hq.desk"
TZ = "Asia/Shanghai"
WEEK, PREVIOUS = "2026-W10", "2026-W09"  # 2 to 8 March 2026 and the week before, Shanghai time
WEEKS = ["2026-W06", "2026-W07", "2026-W08", "2026-W09", "2026-W10"]
FIGURES = 1e-4  # the report keeps 4 decimals

DESK = {
    "title": {"en": "Front desk", "zh": "前台"},
    "applies_to": ["inspection"],
    "method": "weighted", "pass_mark": 80,
    "items": [
        {"code": "greeting", "title": {"en": "Greets the guest", "zh": "问候客人"},
         "dimension": "assurance", "weight": 2, "rule": {"type": "check"}},
        {"code": "uniform", "title": {"en": "Wears the uniform", "zh": "着装规范"}, "dimension": "tangibles",
         "critical": True, "fix_within": "24h", "rule": {"type": "check"}},
        {"code": "tidy", "title": {"en": "Desk is tidy", "zh": "台面整洁"}, "dimension": "tangibles",
         "rule": {"type": "check"}},
    ],
}
# Weights 2 + 1 + 1: everything passed 100 %, greeting failed 50 %, tidy failed 75 %; the
# pass mark is 80, and a failed uniform (critical) fails the record and scores it 0.
ALL_PASS = {"greeting": "pass", "uniform": "pass", "tidy": "pass"}


def answers(**failed) -> dict:
    return {code: {"outcome": "fail" if code in failed else outcome} for code, outcome in ALL_PASS.items()}


def inspect(tenant, occurred_at: str, site=None, staff=None, **failed) -> dict:
    body = {"kind": "inspection", "occurred_at": occurred_at, "site_id": site, "staff_id": staff,
            "data": {"standard": CODE, "answers": answers(**failed)}}
    r = tenant.api.post(RECORDS, json=body)
    assert r.status_code == 201, r.json
    return r.json


def make(tenant, path: str, **body) -> str:
    r = tenant.api.post(f"/api/v1/{path}", json=body)
    assert r.status_code == 201, r.json
    return r.json["id"]


def at(text: str) -> datetime:
    return datetime.fromisoformat(text).astimezone(timezone.utc)


def drain(app) -> None:
    """Run every queued job (with Redis); inline jobs have run already."""
    if app.extensions["servq.queue"] is not None:
        make_worker(app).work(burst=True)


# The rows are entered, and the reports asked for, as if three weeks after week 10: every
# deadline of the week has passed, whatever today's date is.
ENTERED_AT = datetime(2026, 3, 30, 10, tzinfo=timezone(timedelta(hours=8)))


@pytest.fixture
def entered_later():
    with time_machine.travel(ENTERED_AT, tick=True):
        yield ENTERED_AT


@pytest.fixture
def week(entered_later, app, acme, globex):
    """Acme's weeks 9 and 10 of 2026 (Shanghai), and globex's data in the same week."""
    put_standard(acme, CODE, document=DESK)
    north, south, east = (make(acme, "sites", code=c, name=n) for c, n in
                          (("N", "North tower"), ("S", "South tower"), ("E", "East wing")))
    ann, bob, cai = (make(acme, "staff", code=c, name=n, site_id=s) for c, n, s in
                     (("ann", "Ann", north), ("bob", "Bob", south), ("cai", "Cai Li", east)))
    w10 = [
        inspect(acme, "2026-03-02T10:00:00+08:00", north, ann),
        # 00:30 on Monday in Shanghai is still Sunday (week 9) in UTC: week 10 here.
        inspect(acme, "2026-03-02T00:30:00+08:00", north, ann),
        inspect(acme, "2026-03-04T10:00:00+08:00", south, bob, tidy=1),
        inspect(acme, "2026-03-05T10:00:00+08:00", south, bob, greeting=1),
        inspect(acme, "2026-03-06T10:00:00+08:00", east, cai, uniform=1),
        inspect(acme, "2026-03-08T23:00:00+08:00", east, cai),
    ]
    # A complaint never acknowledged nor resolved: both of its deadlines are breached.
    r = acme.api.post(RECORDS, json={
        "kind": "complaint", "occurred_at": "2026-03-03T10:00:00+08:00", "site_id": south,
        "data": {"channel": "hotline", "description": "Nobody came.",
                 "customer": {"name": "张三", "phone": "13812345678"}}})
    assert r.status_code == 201, r.json
    complaint = r.json
    w09 = [inspect(acme, "2026-02-25T10:00:00+08:00", north, ann),
           inspect(acme, "2026-03-01T23:30:00+08:00", south, bob, greeting=1)]
    # Monday 00:30 of week 11 in Shanghai (Sunday of week 10 in UTC): not in week 10.
    inspect(acme, "2026-03-09T00:30:00+08:00", north, ann, greeting=1)

    # Corrective actions as they stood at the end of week 10 (the rows are dated back, as
    # if entered at the time): two open (one overdue), one done in the week, one later.
    critical = make(acme, "actions", title="Uniform missing", record_id=w10[4]["id"])
    manual_done = make(acme, "actions", title="Fix the lobby lamp")
    later = make(acme, "actions", title="Opened after the week")
    with acme.session() as s:
        (resolution,) = s.scalars(select(Action.id).where(Action.record_id == uuid.UUID(complaint["id"])))
        changes = {
            uuid.UUID(critical): dict(created_at=at("2026-03-04T09:00:00+08:00"),
                                      due_at=at("2026-03-05T09:00:00+08:00")),
            resolution: dict(created_at=at("2026-03-03T11:00:00+08:00"),
                             due_at=at("2026-03-20T18:00:00+08:00")),
            uuid.UUID(manual_done): dict(created_at=at("2026-03-02T09:00:00+08:00"), status="done",
                                         done_at=at("2026-03-06T09:00:00+08:00")),
            uuid.UUID(later): dict(created_at=at("2026-03-12T09:00:00+08:00")),
        }
        for action_id, values in changes.items():
            s.execute(update(Action).where(Action.id == action_id).values(**values))
        s.commit()

    # Another tenant, same week, same standard code and names that must not show up.
    put_standard(globex, CODE, document=DESK)
    secret = make(globex, "sites", code="N", name="Globex secret site")
    for _ in range(3):
        inspect(globex, "2026-03-03T10:00:00+08:00", secret, greeting=1, tidy=1)
    return {"sites": {"north": north, "south": south, "east": east},
            "staff": {"ann": ann, "bob": bob, "cai": cai}, "w10": w10, "w09": w09,
            "complaint": complaint, "actions": {"critical": critical, "resolution": str(resolution)}}


def weekly(tenant, **params):
    params.setdefault("week", WEEK)
    return tenant.api.get(URL, query_string=params)


def kpi(data: dict, metric: str) -> dict:
    (row,) = [row for row in data["kpis"] if row["metric"] == metric]
    return row


def evaluations_of_week(tenant, key: str) -> list[Evaluation]:
    """The evaluations of the live records of one Shanghai week, read row by row."""
    bounds = week_bounds(key, TZ)
    with tenant.session() as s:
        return list(s.scalars(select(Evaluation).join(Record, Record.id == Evaluation.record_id).where(
            Record.deleted_at.is_(None), Record.occurred_at >= bounds.since,
            Record.occurred_at < bounds.until)))


# -- the numbers ------------------------------------------------------------------------------


def test_weekly_report_numbers(acme, week):
    r = weekly(acme, lang="en")
    assert r.status_code == 200, r.json
    data = r.json
    assert (data["week"], data["timezone"], data["language"]) == (WEEK, TZ, "en")
    assert data["period"] == {"start_date": "2026-03-02", "end_date": "2026-03-08",
                              "since": "2026-03-01T16:00:00+00:00", "until": "2026-03-08T16:00:00+00:00"}
    assert data["as_of"] == data["period"]["until"]  # a past week counts as of its end
    assert data["weeks"] == WEEKS

    # Week 9 by hand: 100 % passed and 50 % failed.
    for name, value in (("records", 2), ("score", 75.0), ("pass_rate", 50.0), ("critical_failures", 0)):
        assert kpi(data, name)["values"][PREVIOUS] == pytest.approx(value), name
    # Week 10 by hand for the six inspections (100, 100, 75, 50, 0 critical, 100) and from
    # the complaint's stored evaluation (both deadlines breached).
    complaint_eval = [e for e in evaluations_of_week(acme, WEEK) if e.standard_code == "core.complaint"]
    assert len(complaint_eval) == 1 and complaint_eval[0].passed is False
    percents = [100, 100, 75, 50, 0, 100, complaint_eval[0].percent]
    assert kpi(data, "records")["values"][WEEK] == 7
    assert kpi(data, "score")["values"][WEEK] == pytest.approx(sum(percents) / len(percents), abs=FIGURES)
    assert kpi(data, "pass_rate")["values"][WEEK] == pytest.approx(100 * 3 / 7, abs=FIGURES)
    assert kpi(data, "critical_failures")["values"][WEEK] == 1
    assert kpi(data, "complaints")["values"][WEEK] == 1
    # The same numbers straight from the evaluation rows.
    for key in (WEEK, PREVIOUS):
        rows = evaluations_of_week(acme, key)
        scored = [e.percent for e in rows if e.percent is not None]
        judged = [e.passed for e in rows if e.passed is not None]
        assert kpi(data, "score")["values"][key] == pytest.approx(sum(scored) / len(scored), abs=FIGURES)
        assert kpi(data, "pass_rate")["values"][key] == pytest.approx(100 * sum(judged) / len(judged), abs=FIGURES)
    score = kpi(data, "score")
    assert score["current"] == score["values"][WEEK] and score["previous"] == score["values"][PREVIOUS]
    assert score["change"] == pytest.approx(score["current"] - 75.0, abs=1e-4)
    assert score["average_previous"] == pytest.approx(75.0)  # weeks 6-8 have no score
    # Every KPI of the meeting, the parts of the dict-valued ones on rows of their own.
    assert [row["metric"] for row in data["kpis"]] == [
        "records", "score", "pass_rate", "critical_failures", "deadline_attainment", "breaches",
        "complaints", "actions_open", "actions_overdue",
        *(f"{m}.{p}" for m in ("response_time", "resolution_time") for p in ("mean", "median", "p90", "n")),
        "paused_time", "pause_cap_hits", "nps", "nps.n", "csat", "csat.n"]
    assert data["skipped_metrics"] == []
    assert kpi(data, "response_time.p90")["title"] == "Response time (90th percentile)"
    assert kpi(data, "deadline_attainment")["values"][WEEK] == 0.0  # both clocks missed
    records = kpi(data, "records")
    assert [records["values"][w] for w in WEEKS[:3]] == [0, 0, 0]  # a count of nothing is 0
    assert (records["change"], records["average_previous"]) == (5, 0.5)

    # Pareto of failures: every fail or breached outcome of the week's evaluations.
    counts: dict[str, int] = {}
    for e in evaluations_of_week(acme, WEEK):
        for item in e.items:
            if item["outcome"] in ("fail", "breached"):
                key = f"{e.standard_code}/{item['code']}"
                counts[key] = counts.get(key, 0) + 1
    failures = data["top_failures"]
    assert failures["total"] == sum(counts.values()) == 5
    assert {i["item"]: i["failures"] for i in failures["items"]} == counts
    assert [i["failures"] for i in failures["items"]] == sorted(counts.values(), reverse=True)
    assert failures["items"][-1]["cumulative_share"] == pytest.approx(100.0)
    shares = [i["share"] for i in failures["items"]]
    assert [i["cumulative_share"] for i in failures["items"]] == pytest.approx(
        [sum(shares[:n + 1]) for n in range(len(shares))], abs=1e-3)
    titles = {i["item"]: i["title"] for i in failures["items"]}
    assert titles[f"{CODE}/greeting"] == "Greets the guest"
    assert titles["core.complaint/acknowledged_in_time"] == "Acknowledged within 4 working hours"

    # Breaches: the complaint's two missed deadlines, as in its clock rows.
    with acme.session() as s:
        clocks = {(str(c.record_id), c.item_code, c.due_at) for c in s.scalars(
            select(Clock).where(Clock.state == "breached"))}
    listed = {(b["record_id"], b["item"], at(b["due_at"])) for b in data["breaches"]["items"]}
    assert listed == clocks and len(clocks) == 2
    assert {b["record_id"] for b in data["breaches"]["items"]} == {week["complaint"]["id"]}
    assert {b["site"] for b in data["breaches"]["items"]} == {"South tower"}
    assert data["breaches"]["total"] == kpi(data, "breaches")["values"][WEEK] == 2

    # Open actions at the end of the week, oldest first, the overdue one flagged.
    actions = data["open_actions"]
    assert [a["id"] for a in actions["items"]] == [week["actions"]["resolution"], week["actions"]["critical"]]
    assert [a["overdue"] for a in actions["items"]] == [False, True]
    assert (actions["total"], actions["overdue"]) == (2, 1)
    assert actions["items"][1]["age_days"] == 4  # 4 March 09:00 to 9 March 00:00

    # Best and worst by mean score: north 100 (2 records), east 50, south (75, 50, complaint).
    sites = data["sites"]
    assert [(e["name"], e["score"], e["pass_rate"], e["records"]) for e in sites["best"]] == [
        ("North tower", 100.0, 100.0, 2), ("East wing", 50.0, 50.0, 2)]
    south = [75, 50, complaint_eval[0].percent]
    assert [(e["name"], e["records"]) for e in sites["worst"]] == [("South tower", 3)]
    assert sites["worst"][0]["score"] == pytest.approx(sum(south) / 3, abs=FIGURES)
    assert sites["worst"][0]["pass_rate"] == 0.0
    staff = data["staff"]
    assert [(e["name"], e["score"]) for e in staff["best"]] == [("Ann", 100.0), ("Bob", 62.5)]
    assert [(e["name"], e["score"], e["records"]) for e in staff["worst"]] == [("Cai Li", 50.0, 2)]

    # Nothing of globex's: its site, its records, its failures.
    assert "Globex" not in r.get_data(as_text=True)


def test_chinese_titles_and_default_week(acme, week):
    data = weekly(acme, lang="zh").json
    assert data["language"] == "zh"
    assert kpi(data, "score")["title"] == "平均得分"
    assert {i["item"]: i["title"] for i in data["top_failures"]["items"]}[f"{CODE}/greeting"] == "问候客人"
    # Without a week: the week before the current one, in the tenant's time zone.
    r = acme.api.get(URL)
    assert r.status_code == 200, r.json
    assert r.json["week"] == previous_week_key(utcnow(), TZ) and r.json["language"] == "en"


@pytest.mark.cross_tenant("GET /api/v1/reports/weekly")
def test_other_tenant_sees_only_its_own(globex, week):
    data = weekly(globex).json
    assert kpi(data, "records")["values"][WEEK] == 3
    assert kpi(data, "complaints")["values"][WEEK] == 0
    assert data["breaches"]["total"] == 0 and data["open_actions"]["total"] == 0
    assert [e["name"] for e in data["sites"]["best"]] == ["Globex secret site"]
    assert data["top_failures"]["total"] == 6
    text = weekly(globex, format="csv").get_data(as_text=True)
    for name in ("North tower", "South tower", "Ann", "Bob", week["complaint"]["id"]):
        assert name not in text


# -- the formats ------------------------------------------------------------------------------


def read_csv(body: bytes) -> dict[str, list[dict]]:
    """Sections of the report's CSV: ``{section: [row dict, ...]}``."""
    text = body.decode("utf-8-sig")
    out: dict[str, list[dict]] = {}
    header: list[str] = []
    for row in csv.reader(io.StringIO(text)):
        if not row:
            continue
        if row[0] == "section":
            header = row
            continue
        out.setdefault(row[0], []).append(dict(zip(header[1:], row[1:])))
    return out


def test_csv_parses_into_sections(acme, week):
    data = weekly(acme).json
    r = weekly(acme, format="csv")
    assert r.status_code == 200
    assert r.headers["Content-Type"].startswith("text/csv")
    assert r.headers["Content-Disposition"] == \
        f'attachment; filename="servq-weekly-acme-{WEEK}-en.csv"'
    sections = read_csv(r.data)
    assert set(sections) >= {"summary", "kpis", "top_failures", "breaches", "open_actions", "sites", "staff"}
    summary = {row["field"]: row["value"] for row in sections["summary"]}
    assert summary["week"] == WEEK and summary["as_of"] == data["as_of"]
    kpis = {row["metric"]: row for row in sections["kpis"]}
    assert [row["metric"] for row in sections["kpis"]] == [row["metric"] for row in data["kpis"]]
    assert float(kpis["score"][WEEK]) == kpi(data, "score")["values"][WEEK]
    assert int(kpis["records"][PREVIOUS]) == 2 and kpis["records"]["2026-W06"] == "0"
    assert kpis["score"]["2026-W06"] == ""  # no value: an empty cell
    assert [int(row["failures"]) for row in sections["top_failures"]] == \
        [i["failures"] for i in data["top_failures"]["items"]]
    assert [row["record_id"] for row in sections["breaches"]] == [b["record_id"] for b in data["breaches"]["items"]]
    # Readable references: the kind's title and the id's first 8 hex digits.
    assert [row["record"] for row in sections["breaches"]] == [
        f"Complaint #{b['record_id'].replace('-', '')[:8]}" for b in data["breaches"]["items"]]
    assert [row["overdue"] for row in sections["open_actions"]] == ["false", "true"]
    assert [(row["position"], row["name"]) for row in sections["sites"]] == [
        ("best", "North tower"), ("best", "East wing"), ("worst", "South tower")]


PERCENT_UNITS = {"percent"}


def excel(value, kind=None):
    """A JSON report value as the workbook holds it: percentages as fractions, durations
    as days, instants as Shanghai wall-clock datetimes."""
    if value is None or isinstance(value, bool):
        return value
    if kind == "percent":
        return pytest.approx(value / 100, abs=1e-9)
    if kind == "seconds":
        return pytest.approx(value / 86400, abs=1e-9)
    if kind == "instant":
        return datetime.fromisoformat(value).astimezone(ZoneInfo(TZ)).replace(tzinfo=None)
    return value


def test_workbook_reads_back_as_the_json(acme, week):
    data = weekly(acme).json
    r = weekly(acme, format="xlsx")
    assert r.status_code == 200
    assert r.headers["Content-Type"] == "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
    book = load_workbook(io.BytesIO(r.data))
    assert book.sheetnames == ["Summary", "KPIs", "Top failures", "Deadline breaches",
                               "Open corrective actions", "Paused clocks", "Sites", "Staff"]

    def rows(sheet: str, count: int) -> list[tuple]:
        return list(book[sheet].iter_rows(min_row=2, max_row=count + 1, values_only=True))

    kpis = rows("KPIs", len(data["kpis"]))
    assert [c.value for c in book["KPIs"][1]][3:8] == WEEKS
    units = {"percent": "%", "count": "count", "seconds": "duration", "score": "score"}
    assert kpis == [(row["metric"], row["title"], units.get(row["unit"], row["unit"]),
                     *(excel(row["values"][w], row["unit"]) for w in WEEKS),
                     excel(row["change"], row["unit"]), excel(row["average_previous"], row["unit"]))
                    for row in data["kpis"]]
    # Number formats: a percentage is shown as one, a duration as hours and minutes.
    by_metric = {sheet_row[0].value: sheet_row for sheet_row in book["KPIs"].iter_rows(min_row=2)}
    assert by_metric["pass_rate"][7].number_format == "0.0%"
    assert by_metric["response_time.median"][7].number_format == "[h]:mm"
    assert by_metric["records"][7].number_format == "0"
    items = data["top_failures"]["items"]
    assert rows("Top failures", len(items)) == [
        (i["rank"], i["item"], i["title"], i["failures"], excel(i["share"], "percent"),
         excel(i["cumulative_share"], "percent")) for i in items]
    assert book["Top failures"]["E2"].number_format == "0.0%"
    breaches = data["breaches"]["items"]
    assert rows("Deadline breaches", len(breaches)) == [
        (f"Complaint #{b['reference']}", b["kind"], b["site"], f"{b['standard']}/{b['item']}", b["title"],
         excel(b["due_at"], "instant"), excel(b["stopped_at"], "instant"), b["record_id"]) for b in breaches]
    assert book["Deadline breaches"]["F2"].is_date
    assert book["Deadline breaches"]["F2"].number_format == "yyyy-mm-dd hh:mm"
    actions = data["open_actions"]["items"]
    sources = {"critical": "critical item", "deadline": "missed deadline", "manual": "manual", "item": "failed item"}
    assert rows("Open corrective actions", len(actions)) == [
        (f"#{a['reference']}", a["title"], sources[a["source"]], a["status"], a["item"],
         excel(a["created_at"], "instant"), excel(a["due_at"], "instant"), a["overdue"], a["age_days"], a["id"])
        for a in actions]
    for key, sheet in (("sites", "Sites"), ("staff", "Staff")):
        expected = [(position.capitalize(), rank, e["code"], e["name"], e["score"],
                     excel(e["pass_rate"], "percent"), e["records"])
                    for position in ("best", "worst")
                    for rank, e in enumerate(data[key][position], start=1)]
        assert rows(sheet, len(expected)) == expected
    # Native charts: a line chart of the KPI trend, a bar chart (with line) of the Pareto.
    with zipfile.ZipFile(io.BytesIO(r.data)) as archive:
        charts = sorted(n for n in archive.namelist() if n.startswith("xl/charts/chart"))
        assert len(charts) == 2
        kinds = [chart_kinds(archive.read(name)) for name in charts]
    assert kinds == [{"lineChart"}, {"barChart", "lineChart"}]


def test_chinese_workbook_has_every_label_translated(acme, week):
    book = load_workbook(io.BytesIO(weekly(acme, format="xlsx", lang="zh").data))
    assert book.sheetnames == ["概要", "关键指标", "主要不合格项", "超时记录", "未关闭的纠正措施", "时钟暂停", "地点", "员工"]
    for sheet in book:
        for cell in sheet[1]:  # every header but the ISO weeks is Chinese
            assert cell.value.startswith("2026-W") or any("\u4e00" <= ch <= "\u9fff" for ch in cell.value), \
                (sheet.title, cell.value)
    assert [c.value for c in book["概要"]["A"]][1:] == ["租户", "周", "期间", "时区", "截至", "语言"]
    assert book["概要"]["B6"].is_date  # as of: a real date
    units = {row[2] for row in book["关键指标"].iter_rows(min_row=2, values_only=True) if row[0]}
    assert units <= {"次数", "%", "时长", "得分", "分", "每千"}, units
    positions = {row[0] for row in book["地点"].iter_rows(min_row=2, values_only=True) if row[0]}
    assert positions == {"最佳", "最差"}
    sources = {row[2] for row in book["未关闭的纠正措施"].iter_rows(min_row=2, max_row=3, values_only=True)}
    assert sources == {"手工", "超时"}, sources


def chart_kinds(xml: bytes) -> set[str]:
    """The chart types plotted in a DrawingML chart part."""
    ns = "{http://schemas.openxmlformats.org/drawingml/2006/chart}"
    plot = ElementTree.fromstring(xml).find(f"{ns}chart/{ns}plotArea")
    return {child.tag.removeprefix(ns) for child in plot if child.tag.endswith("Chart")}


def page_image(body: bytes):
    pdf = pypdfium2.PdfDocument(body)
    try:
        page = pdf[0]
        image = page.render(scale=1).to_pil().convert("L")
        text = page.get_textpage().get_text_range()
        return image, text, len(pdf)
    finally:
        pdf.close()


def ink(image) -> float:
    """Share of the page's pixels that are not white."""
    histogram = image.histogram()
    return 1 - sum(histogram[250:]) / sum(histogram)


@pytest.mark.parametrize("lang, title", [("en", "Weekly quality report"), ("zh", "每周质量报告")])
def test_pdf_renders(acme, week, lang, title):
    r = weekly(acme, format="pdf", lang=lang)
    assert r.status_code == 200
    assert r.headers["Content-Type"] == "application/pdf"
    assert r.data.startswith(b"%PDF-")
    image, text, pages = page_image(r.data)
    assert image.size[0] > image.size[1]  # A4 landscape
    assert ink(image) > 0.02  # tables and a chart, not a blank page
    assert title in text  # the title is real text, in the right font
    assert ("平均得分" if lang == "zh" else "Mean score") in text
    assert pages >= 2
    # One embedded TrueType font (a subset of WenQuanYi Micro Hei), for Chinese and Latin
    # alike: nothing left to the viewer's Asian font pack, "·" set like any other glyph.
    assert b"/FontFile2" in r.data and b"WenQuanYiMicroHei" in r.data and b"STSong" not in r.data
    assert f"{title} · Acme" in text


def test_pdf_shows_readable_references(acme, week):
    data = weekly(acme).json
    text = pdf_text(weekly(acme, format="pdf").data)
    (breach, *_) = data["breaches"]["items"]
    assert f"Complaint #{breach['reference']}" in text
    assert breach["record_id"] not in text  # no raw UUID in the printed report
    for action in data["open_actions"]["items"]:
        assert action["id"] not in text and f"#{action['reference']}" in text


def pdf_text(body: bytes) -> str:
    pdf = pypdfium2.PdfDocument(body)
    try:
        return "\n".join(page.get_textpage().get_text_range() for page in pdf)
    finally:
        pdf.close()


def test_worst_is_not_shown_when_all_are_equal(acme, entered_later):
    put_standard(acme, CODE, document=DESK)
    north, south = (make(acme, "sites", code=c, name=n) for c, n in (("N", "North"), ("S", "South")))
    inspect(acme, "2026-03-03T10:00:00+08:00", north)
    inspect(acme, "2026-03-04T10:00:00+08:00", south)
    data = weekly(acme).json
    assert data["sites"]["all_equal"] is True and data["sites"]["worst"] == []
    assert sorted(e["name"] for e in data["sites"]["best"]) == ["North", "South"]
    sections = read_csv(weekly(acme, format="csv").data)
    assert {row["position"] for row in sections["sites"]} == {"equal"}
    text = pdf_text(weekly(acme, format="pdf").data)
    assert "listed as equals, none worst" in text and "Worst" not in text


def test_empty_week_still_renders_every_format(acme):
    for fmt in ("json", "csv", "xlsx", "pdf"):
        r = weekly(acme, format=fmt, week="2026-W02")
        assert r.status_code == 200, (fmt, r.data[:200])
    data = weekly(acme, week="2026-W02").json
    assert kpi(data, "records")["values"]["2026-W02"] == 0
    assert data["top_failures"]["items"] == [] and data["sites"]["best"] == []
    image, _text, _pages = page_image(weekly(acme, format="pdf", week="2026-W02").data)
    assert ink(image) > 0.005


# -- the job path -----------------------------------------------------------------------------


def run_async(tenant, app, **params):
    r = weekly(tenant, **params, **{"async": "true"})
    assert r.status_code == 202, r.json
    assert r.headers["Location"].endswith(f"{RUNS}/{r.json['id']}")
    assert r.json["links"] == {"self": f"{RUNS}/{r.json['id']}", "file": f"{RUNS}/{r.json['id']}/file"}
    drain(app)
    status = tenant.api.get(f"{RUNS}/{r.json['id']}")
    assert status.status_code == 200 and status.json["status"] == "done", status.json
    return status.json


@pytest.mark.parametrize("fmt", ["pdf", "xlsx", "csv", "json"])
def test_async_job_gives_the_same_file(app, acme, week, fmt):
    direct = weekly(acme, format=fmt)
    run = run_async(acme, app, format=fmt)
    assert (run["period"], run["format"], run["language"]) == (WEEK, fmt, "en")
    r = acme.api.get(run["links"]["file"])
    assert r.status_code == 200
    assert r.headers["Content-Type"] == direct.headers["Content-Type"]
    assert r.data == direct.data


def test_big_week_runs_as_a_job(app, acme, week):
    app.config["REPORT_INLINE_MAX_RECORDS"] = 6  # week 10 has 7 records
    r = weekly(acme, format="pdf")
    assert r.status_code == 202, r.json
    drain(app)
    body = acme.api.get(f"{RUNS}/{r.json['id']}/file").data
    assert ink(page_image(body)[0]) > 0.02
    assert weekly(acme, format="pdf", week=PREVIOUS).status_code == 200  # 2 records: inline


def test_job_is_idempotent_and_file_waits_for_it(app, acme, week):
    run = run_async(acme, app, format="csv")
    with acme.session() as s:
        before = s.scalar(select(ReportRun).where(ReportRun.id == uuid.UUID(run["id"])))
        queued = ReportRun(report="weekly", period=WEEK, format="csv", language="en", status="queued")
        failed = ReportRun(report="weekly", period=WEEK, format="csv", language="en", status="failed",
                           error="RuntimeError: disk full")
        s.add_all([queued, failed])
        s.commit()
        queued_id, failed_id = queued.id, failed.id
    with app.app_context():
        assert run_job("reports.build", str(acme.id), run["id"]) == "done"
    with acme.session() as s:
        after = s.scalar(select(ReportRun).where(ReportRun.id == uuid.UUID(run["id"])))
    assert (after.finished_at, after.content) == (before.finished_at, before.content)
    r = acme.api.get(f"{RUNS}/{queued_id}/file")
    assert r.status_code == 409 and "queued" in r.json["message"]
    r = acme.api.get(f"{RUNS}/{failed_id}/file")
    assert r.status_code == 409 and "disk full" in r.json["message"]
    # A failed run is built again by the job (a retry).
    with app.app_context():
        assert run_job("reports.build", str(acme.id), str(failed_id)) == "done"
    assert acme.api.get(f"{RUNS}/{failed_id}/file").data == acme.api.get(run["links"]["file"]).data


@pytest.mark.cross_tenant("GET /api/v1/reports/runs/<uuid:run_id>",
                          "GET /api/v1/reports/runs/<uuid:run_id>/file")
def test_runs_of_another_tenant_are_404(app, acme, globex, week):
    run = run_async(acme, app, format="csv")
    for url in (run["links"]["self"], run["links"]["file"]):
        r = globex.api.get(url)
        assert r.status_code == 404 and r.json["message"] == "Report run not found."
    assert acme.api.get(f"{RUNS}/{uuid.uuid4()}").status_code == 404


# -- refused input and access -----------------------------------------------------------------


@pytest.mark.parametrize("params, field", [
    ({"week": "2026-47"}, "week"),
    ({"week": "2026-W54"}, "week"),
    ({"week": "2025-W53"}, "week"),  # 2025 has 52 ISO weeks (2026 has 53)
    ({"week": "W10"}, "week"),
    ({"week": "9999-W52"}, "week"),  # its next week is past the last date Python knows
    ({"week": "0001-W01"}, "week"),
    ({"format": "docx"}, "format"),
    ({"lang": "fr"}, "lang"),
    ({"async": "maybe"}, "async"),
])
def test_bad_input_is_422_and_writes_nothing(acme, params, field):
    r = acme.api.get(URL, query_string={"week": WEEK, **params})
    assert r.status_code == 422, r.json
    assert field in r.json["errors"]["query"]
    with acme.session() as s:
        assert s.scalars(select(ReportRun)).all() == []
    assert acme.api.get(URL, query_string={"week": "2026-W53"}).status_code == 200


def test_read_permission_and_authentication(client, acme, week):
    viewer = acme.as_role("viewer")
    assert viewer.get(URL, query_string={"week": WEEK}).status_code == 200
    assert client.get(URL, query_string={"week": WEEK}).status_code == 401


# -- the command line -------------------------------------------------------------------------


def servq(app, *args):
    return CliRunner().invoke(cli.make_cli(app_factory=lambda: app), list(args))


def test_cli_writes_the_report(app, acme, week, tmp_path):
    api = {fmt: weekly(acme, format=fmt).data for fmt in ("pdf", "xlsx", "csv")}
    for fmt in ("pdf", "xlsx", "csv"):
        path = tmp_path / f"report.{fmt}"
        result = servq(app, "reports", "weekly", "--tenant", "acme", "--week", WEEK, "-o", str(path))
        assert result.exit_code == 0, result.output
        assert f"written to {path}" in result.stderr
        assert path.read_bytes() == api[fmt]
    book = load_workbook(tmp_path / "report.xlsx")
    assert book["KPIs"]["A2"].value == "records"
    result = servq(app, "reports", "weekly", "--tenant", "acme", "--week", WEEK, "--format", "json", "--lang", "zh")
    assert result.exit_code == 0, result.output
    assert '"language": "zh"' in result.stdout and "平均得分" in result.stdout


@pytest.mark.parametrize("args, message", [
    (["--tenant", "acme", "--week", "2026-W60"], "2026 has no week 60"),
    (["--tenant", "nobody", "--week", WEEK], "no tenant with slug 'nobody'"),
    (["--tenant", "acme", "--week", WEEK, "--format", "pdf"], "give a file with -o"),
    (["--tenant", "acme", "--week", WEEK, "-o", "report.docx"], "cannot write a report as .docx"),
    (["--tenant", "acme", "--week", WEEK, "-o", "report.PDFX"], "cannot write a report as .pdfx"),
    (["--tenant", "acme", "--week", WEEK, "--format", "csv", "-o", "report.pdf"],
     "--format csv does not match the output file's extension .pdf"),
])
def test_cli_errors(app, acme, args, message, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    result = servq(app, "reports", "weekly", *args)
    assert result.exit_code != 0
    assert message in result.stderr and "Traceback" not in result.output
    assert not list(tmp_path.glob("report.*"))  # nothing written


def test_weeks_follow_the_tenant_time_zone():
    # Shanghai: Monday 00:00 +08:00 is Sunday 16:00 UTC; New York moves to summer time
    # on 8 March 2026, so its week 10 is an hour shorter.
    shanghai = week_bounds(WEEK, TZ)
    assert (shanghai.since.isoformat(), shanghai.until.isoformat()) == (
        "2026-03-01T16:00:00+00:00", "2026-03-08T16:00:00+00:00")
    new_york = week_bounds(WEEK, "America/New_York")
    assert new_york.until - new_york.since == timedelta(days=7, hours=-1)
    assert week_bounds("2026-W53", "UTC").since.date().isoformat() == "2026-12-28"


def test_metrics_not_registered_are_skipped(app, acme, week):
    from servq.core.kpis import registered_metrics
    from servq.core.plugins.app import get_plugins

    plugins = get_plugins(app)
    registered = registered_metrics(plugins)
    plugins._kpi_metrics = {name: m for name, m in registered.items()
                            if name not in ("nps", "csat", "failed_items")}
    r = weekly(acme)
    assert r.status_code == 200, r.json
    data = r.json
    assert data["skipped_metrics"] == ["nps", "csat"]
    assert not any(row["metric"].startswith(("nps", "csat")) for row in data["kpis"])
    assert data["top_failures"] == {"available": False, "total": 0, "items": []}
    assert kpi(data, "records")["values"][WEEK] == 7
    for fmt in ("csv", "xlsx", "pdf"):
        assert weekly(acme, format=fmt).status_code == 200
