"""The daily review: every open ticket listed, held every working day (holidays are not misses)."""

from __future__ import annotations

from datetime import datetime

import pytest
import time_machine

from .helpers import RECORDS, SHANGHAI, TICKET, create, evaluation, items


def local(*args) -> datetime:
    return datetime(*args, tzinfo=SHANGHAI)


def ok(response):
    assert response.status_code in (200, 201), response.json
    return response.json


def review(client, site_id, day, ticket_ids):
    return ok(create(client, "aftersales.daily_review", {"date": day, "open_ticket_ids": ticket_ids,
                                                         "next_day_plan": "visits", "attendees": ["Wang", "Li"]},
                     site_id=site_id, occurred_at=f"{day}T18:30:00+08:00"))


def test_a_review_that_omits_open_tickets_loses_a_point_each(centre):
    site = centre.sites["NC-SC"]
    with time_machine.travel(local(2026, 3, 10, 19, 0), tick=False):
        tickets = [ok(create(centre.agent, "aftersales.ticket", TICKET, site_id=site,
                             occurred_at="2026-03-10T10:00:00+08:00"))["id"] for _ in range(3)]
        closed = ok(create(centre.agent, "aftersales.ticket", TICKET, site_id=centre.sites["JJ-SC"]))
        full = review(centre.agent, site, "2026-03-10", tickets)
        assert full["data"]["unlisted_open_tickets"] == 0
        assert evaluation(centre.agent, full["id"], "aftersales.daily_review")["percent"] == 100
        partial = review(centre.agent, site, "2026-03-10", tickets[:1])
        assert partial["data"]["unlisted_open_tickets"] == 2
        assert sorted(partial["data"]["unlisted_ticket_ids"]) == sorted(tickets[1:])
        scored = evaluation(centre.agent, partial["id"], "aftersales.daily_review")
        assert items(scored)["all_open_listed"]["outcome"] == "fail" and scored["percent"] == 60
        assert closed not in partial["data"]["unlisted_ticket_ids"]   # another centre's ticket


def test_a_holiday_is_not_a_missed_daily_review(make_centre):
    with time_machine.travel(local(2026, 4, 28, 9, 0), tick=False):
        centre = make_centre("holiday")
    site = centre.sites["NC-SC"]
    for day in ("2026-04-28", "2026-04-29", "2026-04-30", "2026-05-06"):
        with time_machine.travel(local(*map(int, day.split("-")), 18, 45), tick=False):
            review(centre.agent, site, day, [])
    with time_machine.travel(local(2026, 5, 7, 9, 0), tick=False):
        schedules = ok(centre.manager.get("/api/v1/schedules?kind=aftersales.daily_review"))
        schedule = next(s for s in schedules if s["site_id"] == site)
        assert schedule["working_days"] is True
        report = ok(centre.manager.get(f"/api/v1/schedules/{schedule['id']}/compliance"
                                       "?since=2026-04-28T00:00:00%2B08:00&until=2026-05-07T00:00:00%2B08:00"))
    outcomes = {datetime.fromisoformat(p["start"]).astimezone(SHANGHAI).date().isoformat(): p["outcome"]
                for p in report["periods"]}
    assert outcomes["2026-05-01"] == "not_required"   # Labour Day
    assert outcomes["2026-05-04"] == "not_required"
    assert outcomes["2026-05-02"] == "not_required"   # a Saturday
    assert "missed" not in outcomes.values(), outcomes
    assert outcomes["2026-04-30"] == "met" and outcomes["2026-05-06"] == "met"


@pytest.mark.cross_tenant
def test_another_tenant_cannot_see_a_review(centre, globex):
    record = review(centre.agent, centre.sites["NC-SC"], "2026-03-10", [])
    assert globex.api.get(f"{RECORDS}/{record['id']}").status_code == 404
