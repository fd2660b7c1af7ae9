"""A waybill number names one delivery of the company (``RecordKind.reference``): a second
live delivery with it is refused over HTTP, in a batch and in an import (naming the lines),
nothing is written; a deleted delivery's number may be used again; the number finds its
delivery."""

from __future__ import annotations

import json

import time_machine
from click.testing import CliRunner

from servq.cli import make_cli
from servq.plugins.courier.tests.helpers import RECORDS, delivery

NOW = "2026-03-10T12:00:00+00:00"


def _line(waybill: str, day: int = 2) -> dict:
    return {"kind": "courier.delivery", "occurred_at": f"2026-03-{day:02d}T01:00:00+00:00", "site": "STN-XH",
            "staff": "C1", "data": {"waybill_no": waybill, "service": "same_city",
                                    "shipped_at": "2026-03-01T22:00:00+00:00"}}


def _count(company) -> int:
    response = company.api.get(f"{RECORDS}?kind=courier.delivery&per_page=1")
    return json.loads(response.headers["X-Pagination"])["total"]


@time_machine.travel(NOW, tick=False)
def test_a_waybill_names_one_delivery_over_http(company, globex):
    first = delivery(company, waybill_no="XD7001")
    assert first["reference"] == "XD7001"
    body = {"kind": "courier.delivery", "occurred_at": "2026-03-02T02:00:00+00:00", "staff_id": company.staff["C2"],
            "site_id": company.sites["STN-XH"],
            "data": {"waybill_no": "XD7001", "service": "domestic", "shipped_at": "2026-03-01T20:00:00+00:00"}}
    r = company.api.post(RECORDS, json=body)
    assert r.status_code == 422, r.json
    assert "XD7001" in r.json["errors"]["json"]["data"]["waybill_no"][0] and first["id"] in r.json["errors"]["json"]["data"]["waybill_no"][0]
    assert _count(company) == 1
    # Found by its number; another tenant finds nothing.
    [found] = company.api.get(f"{RECORDS}?reference=XD7001").json
    assert found["id"] == first["id"]
    assert globex.api.get(f"{RECORDS}?reference=XD7001").json == []
    # A change of data keeps its own number; taking another delivery's number is refused.
    second = delivery(company, waybill_no="XD7002", staff="C2")
    etag = company.api.get(f"{RECORDS}/{second['id']}").headers["ETag"]
    r = company.api.patch(f"{RECORDS}/{second['id']}", json={"data": {**second["data"], "waybill_no": "XD7001"}},
                          headers={"If-Match": etag})
    assert r.status_code == 422 and "XD7001" in r.json["errors"]["json"]["data"]["waybill_no"][0]
    assert company.api.get(f"{RECORDS}/{second['id']}").json["data"]["waybill_no"] == "XD7002"
    # A deleted delivery's number may be used again.
    etag = company.api.get(f"{RECORDS}/{first['id']}").headers["ETag"]
    assert company.api.delete(f"{RECORDS}/{first['id']}", headers={"If-Match": etag}).status_code == 204
    assert company.api.post(RECORDS, json=body).status_code == 201


@time_machine.travel(NOW, tick=False)
def test_a_batch_with_a_known_or_repeated_waybill_writes_nothing(company):
    delivery(company, waybill_no="XD7101")
    items = [{**_line("XD7102"), "site_id": company.sites["STN-XH"], "staff_id": company.staff["C1"]}
             for _ in range(3)]
    for item_ in items:
        item_.pop("site"), item_.pop("staff")
    items[1]["data"] = {**items[1]["data"], "waybill_no": "XD7101"}
    r = company.api.post(f"{RECORDS}/batch", json={"records": items})
    assert r.status_code == 422, r.json
    text = json.dumps(r.json, ensure_ascii=False)
    assert "XD7101" in text and "given twice" in text
    assert _count(company) == 1


@time_machine.travel(NOW, tick=False)
def test_an_import_names_the_lines_of_known_and_repeated_waybills(app, company, tmp_path):
    delivery(company, waybill_no="XD7201")
    lines = [_line("XD7202"), _line("XD7203"), _line("XD7202", 3), _line("XD7204")]
    path = tmp_path / "deliveries.jsonl"
    path.write_text("".join(json.dumps(line, ensure_ascii=False) + "\n" for line in lines), encoding="utf-8")
    cli = make_cli(app_factory=lambda: app)
    result = CliRunner().invoke(cli, ["records", "import", "--tenant", "xunda", str(path)])
    assert result.exit_code == 1
    assert "line 3" in result.output and "given twice: on line 1 too" in result.output, result.output
    assert _count(company) == 1
    # A number the company has already: found when the database refuses it, by line.
    lines[2] = _line("XD7201", 3)
    path.write_text("".join(json.dumps(line, ensure_ascii=False) + "\n" for line in lines), encoding="utf-8")
    for extra in ([], ["--dry-run"]):
        result = CliRunner().invoke(cli, ["records", "import", "--tenant", "xunda", "--chunk", "2", *extra, str(path)])
        assert result.exit_code == 1, result.output
        assert "line 3" in result.output and "XD7201" in result.output and "exists already" in result.output
        assert _count(company) == 1
    lines[2] = _line("XD7205", 3)
    path.write_text("".join(json.dumps(line, ensure_ascii=False) + "\n" for line in lines), encoding="utf-8")
    result = CliRunner().invoke(cli, ["records", "import", "--tenant", "xunda", str(path)])
    assert result.exit_code == 0, result.output
    assert _count(company) == 5
