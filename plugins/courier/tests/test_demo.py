"""The courier demo tenant (tenants/examples/courier.toml) onboarded with demo data: four
months of two stations written through core, with the seed rule exercised."""

from __future__ import annotations

from collections import Counter

import time_machine
from sqlalchemy import func, select

from servq.core.models import Action, Evaluation, OutboxEvent, Record, Staff, SurveyResponse
from servq.tenants.onboarding import example_manifests, onboard


@time_machine.travel("2026-06-15T04:00:00+00:00", tick=False)
def test_the_demo_company(app, factory):
    manifest = dict(example_manifests())["courier.toml"]
    report = onboard(app, manifest, demo=True)
    with factory.session(report.tenant_id) as session:
        kinds = Counter(dict(session.execute(select(Record.kind, func.count()).group_by(Record.kind)).all()))
        # Four months (February to May) and half of June, two stations.
        assert kinds["courier.delivery"] > 1000
        assert kinds["inspection"] > 250 and kinds["courier.vehicle_check"] == 16 * 5
        critical = Counter(session.scalars(select(Action.item_code).where(Action.source == "critical")))
        assert critical["documents_valid"] == 1
        assert critical["no_gift_withheld"] == 1
        assert critical["waited_for_check"] == 12
        assert 10 < critical["appointment_kept_or_notified"] < 80
        wang = session.scalar(select(Staff.id).where(Staff.name.like("王强%")))
        rush = session.scalars(select(Record.occurred_at).join(Action, Action.record_id == Record.id)
                               .where(Action.item_code == "no_private_rush_fee")).all()
        assert len(rush) == 3 and len({(r.year, r.month) for r in rush}) == 1
        flags = session.scalars(select(OutboxEvent).where(OutboxEvent.type == "courier.repeat_offence")).all()
        rush_flags = [(f.payload["staff_id"], f.payload["count"]) for f in flags
                      if f.payload["item"] == "no_private_rush_fee"]
        assert rush_flags == [(str(wang), 3)]
        # Missed appointments repeat too (6 % of them, half not notified): a few couriers
        # are flagged for those, never for anything else.
        assert {f.payload["item"] for f in flags} <= {"no_private_rush_fee", "appointment_kept_or_notified"}
        failed = session.scalar(select(func.count()).select_from(Record).where(
            Record.data["delivered_first_attempt"].as_boolean().is_(False)))
        assert 0.01 < failed / kinds["courier.delivery"] < 0.08
        assert session.scalar(select(func.count()).select_from(SurveyResponse)) >= 16
        farewell = session.scalar(select(func.count()).select_from(Evaluation).where(
            Evaluation.standard_code == "courier.delivery"))
        assert farewell >= kinds["courier.delivery"]
