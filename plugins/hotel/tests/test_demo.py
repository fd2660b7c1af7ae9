"""The hotel demo (``tenants/examples/hotel.toml`` with ``--demo``): four months of
deterministic history through core, the seed's room 1606 case verbatim, and the figures a
hotel's quality meeting reads."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

import time_machine
from sqlalchemy import select

from servq.core.models import Action, OutboxEvent, Record
from servq.tenants.onboarding import example_manifests, onboard
from tests.factories import ApiClient

NOW = datetime(2026, 11, 20, 10, 0, tzinfo=ZoneInfo("Asia/Shanghai"))


def test_the_demo_hotel(app, factory):
    manifest = dict(example_manifests())["hotel.toml"]
    with time_machine.travel(NOW, tick=False):
        report = onboard(app, manifest, demo=True)
        api = ApiClient(factory.client, factory.token(report.tenant_id, "manager@hotel.servq.test"))

        # The seed's case: room 1606, Mr Wu, three carpet burns at 50 = 150 CNY, witness
        # 小王, extra ashtrays (bonus), taken aside, accepted; the room inspected before.
        case = [r for r in api.get("/api/v1/records", query_string={
            "kind": "hotel.checkout_inspection", "page_size": 500}).json if r["data"]["room"] == "1606"
            and r["data"]["damages"]]
        assert len(case) == 1
        data = case[0]["data"]
        assert case[0]["status"] == "charged" and data["guest_response"] == "accepted"
        assert data["damages"][0]["quantity"] == 3 and data["damages"][0]["list_price"] == 50
        assert data["damage_total"] == 150 and data["damages"][0]["witness_id"].startswith("小王")
        assert data["handled_privately"] is True and data["preventive_service"] is True
        assert data["prior_inspection_on_file"] is True
        evaluation = api.get(f"/api/v1/records/{case[0]['id']}/evaluations").json[0]
        assert evaluation["passed"] is True
        bonus = next(i for i in evaluation["items"] if i["code"] == "preventive_service")
        assert bonus["outcome"] == "pass"

        kpis = api.get("/api/v1/kpis", query_string={
            "metrics": "hotel.inspection_pass_first_time,hotel.refill_attainment,"
                       "hotel.office_ready_attainment,hotel.damage_charges,hotel.dish_rejection_rate",
            "since": "2026-07-01T00:00:00+08:00", "until": "2026-11-01T00:00:00+08:00"})
        assert kpis.status_code == 200, kpis.json
        values = kpis.json["rows"][0]["values"]
        # About 8 % fail their first inspection (one attendant at 20 %), 10 % of meetings
        # miss the 15-minute refill, 5 % of offices are late.
        assert 75 <= values["hotel.inspection_pass_first_time"] < 100
        assert 75 <= values["hotel.refill_attainment"] < 100
        assert 85 <= values["hotel.office_ready_attainment"] < 100
        assert values["hotel.damage_charges"]["count"] == 3
        assert values["hotel.damage_charges"]["charged"] == 2 and values["hotel.damage_charges"]["waived"] == 1
        assert 0 < values["hotel.dish_rejection_rate"] < 40
        by_attendant = api.get("/api/v1/kpis", query_string={
            "metrics": "hotel.inspection_pass_first_time", "group_by": "staff",
            "since": "2026-07-01T00:00:00+08:00", "until": "2026-11-01T00:00:00+08:00"}).json["rows"]
        rates = sorted(row["values"]["hotel.inspection_pass_first_time"] for row in by_attendant)
        assert rates[0] < rates[-1]  # the weak attendant stands out

        # The weekly report shows the hotel's own figures after core's, in Chinese too.
        weekly = api.get("/api/v1/reports/weekly", query_string={"week": "2026-W41", "lang": "zh"})
        assert weekly.status_code == 200, weekly.json
        rows = {row["metric"]: row for row in weekly.json["kpis"]}
        for name in ("hotel.inspection_pass_first_time", "hotel.refill_attainment",
                     "hotel.office_ready_attainment", "hotel.dish_rejection_rate"):
            assert name in rows and rows[name]["current"] is not None, name
        assert rows["hotel.refill_attainment"]["title"] == "会议15分钟添茶达标率"
        assert "hotel.damage_charges" not in rows

    with factory.session(report.tenant_id) as session:
        # A missed week of teaware disinfection was reported; the mystery check that
        # caught 问别人去 opened a corrective action.
        missed = [e for e in session.scalars(select(OutboxEvent).where(OutboxEvent.type == "schedule.missed"))]
        assert any((e.payload.get("match") or {}).get("task") == "teaware_disinfection" for e in missed)
        actions = list(session.scalars(select(Action)))
        assert any(a.standard_code == "hotel.service_etiquette" for a in actions)
        repairs = session.scalars(select(Record).where(Record.kind == "hotel.repair")).all()
        assert repairs and all(r.data.get("source_record_id") for r in repairs)
