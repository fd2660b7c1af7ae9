"""The after-sales demo tenant: onboarded from its manifest with four months of scored history."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

import time_machine
from sqlalchemy import func, select

from servq.core.db.session import new_session
from servq.core.models import Action, Evaluation, KbArticle, KbLink, Record, Tenant
from servq.tenants.onboarding import example_manifests, onboard

SHANGHAI = ZoneInfo("Asia/Shanghai")


def test_the_demo_tenant_has_scored_history(app):
    manifest = dict(example_manifests())["aftersales.toml"]
    with time_machine.travel(datetime(2026, 3, 12, 20, 0, tzinfo=SHANGHAI), tick=False):
        report = onboard(app, manifest, demo=True)
    with app.app_context(), new_session(app, report.tenant_id) as session:
        kinds = dict(session.execute(select(Record.kind, func.count()).group_by(Record.kind)).all())
        assert kinds["aftersales.ticket"] > 300 and kinds["aftersales.visit"] > 50
        assert kinds["aftersales.installation"] >= 6 and kinds["aftersales.daily_review"] > 100
        assert kinds["aftersales.call"] > 500 and kinds["inspection"] > 100
        tickets = list(session.scalars(select(Record).where(Record.kind == "aftersales.ticket")))
        assert any(t.data.get("fixed_first_time") is False for t in tickets)
        assert any(t.status == "closed" for t in tickets) and any(t.status != "closed" for t in tickets)
        codes = set(session.scalars(select(Evaluation.standard_code).distinct()))
        assert {"aftersales.ticket", "aftersales.visit", "aftersales.installation", "aftersales.daily_review",
                "aftersales.call_qa"} <= codes
        red = session.scalar(select(func.count()).select_from(Action)
                             .where(Action.item_code == "no_taboo_language"))
        assert red == 1
        late = session.scalar(select(func.count()).select_from(Action)
                              .where(Action.item_code == "accepted_within_5_days"))
        assert late == 1
        # the knowledge base: one published article per fault, the names of resolved tickets linked
        articles = dict(session.execute(select(KbArticle.code, KbArticle.status)).all())
        assert articles == {code: "published" for code in ("KB-hardware", "KB-sensor", "KB-software",
                                                            "KB-usage", "KB-wiring")}
        resolved = [t for t in tickets if t.status in ("resolved", "closed")]
        linked = set(session.scalars(select(KbLink.record_id)))
        assert all((t.id in linked) == bool(t.data["kb_articles"]) for t in resolved)
        assert all(t.data.get("kb_linked") is (True if t.id in linked else None) for t in tickets)
        assert 0.3 < len(linked) / len(resolved) < 0.7
        assert sum(session.scalars(select(KbArticle.links))) == session.scalar(
            select(func.count()).select_from(KbLink))
        assert session.scalar(select(Tenant.slug).where(Tenant.id == report.tenant_id)) == "aftersales-demo"
