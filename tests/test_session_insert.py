"""``TenantSession.insert``: one row written at once, as ``add`` + ``flush`` would."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta, timezone

import pytest
from sqlalchemy import inspect, select

from core.models import Record, Site, Staff
from core.tenancy import CrossTenantWrite, NoTenantContext


def test_insert_applies_defaults_stamps_the_tenant_and_leaves_the_object_clean(app, acme):
    with acme.session() as s:
        site = Site(code="HQ", name="Head office")
        s.insert(site)
        state = inspect(site)
        assert state.persistent and not s.dirty and not s.new
        assert site.tenant_id == acme.id and isinstance(site.id, uuid.UUID)
        assert site.address == "" and site.active is True and site.created_at.tzinfo is not None
        # Changed afterwards: flushed as an UPDATE like any loaded object.
        site.name = "Head office (north)"
        s.commit()
    with acme.session() as s:
        row = s.scalar(select(Site).where(Site.code == "HQ"))
        assert (row.id, row.name, row.address, row.active) == (site.id, "Head office (north)", "", True)
        assert abs(row.created_at - site.created_at) < timedelta(seconds=1)


def test_insert_writes_json_and_instants_as_stored(app, acme):
    occurred = datetime(2026, 3, 2, 9, 30, tzinfo=timezone(timedelta(hours=8)))
    data = {"title": "Lobby floor wet", "tags": ["lobby", "ünïcode"], "nested": {"n": 1.5}}
    with acme.session() as s:
        record = Record(kind="observation", occurred_at=occurred, data=data)
        s.insert(record)
        assert record.status == "open" and record.timestamps == {} and record.escalation_level == 0
        s.commit()
    with acme.session() as s:
        row = s.get(Record, (acme.id, record.id))
        assert row.data == data and row.occurred_at == occurred and row.timestamps == {}
        assert row.occurred_at.utcoffset() == timedelta(0)  # stored and read back in UTC


def test_pending_changes_are_flushed_first(app, acme):
    with acme.session() as s:
        site = Site(code="S1", name="Depot")
        s.add(site)  # pending: the staff row below refers to it
        s.flush()
        staff = Staff(code="P1", name="Pat", site_id=site.id)
        other = Site(code="S2", name="Second depot")
        s.add(other)
        s.insert(staff)
        assert inspect(other).persistent
        s.commit()
    with acme.session() as s:
        assert {x.code for x in s.scalars(select(Site))} == {"S1", "S2"}
        assert s.scalar(select(Staff.site_id).where(Staff.code == "P1")) == site.id


def test_insert_refuses_no_tenant_and_another_tenant(app, acme, globex):
    from core.database import new_session

    with app.app_context(), new_session(app) as s:
        with pytest.raises(NoTenantContext):
            s.insert(Site(code="X", name="x"))
    with acme.session() as s:
        with pytest.raises(CrossTenantWrite):
            s.insert(Site(tenant_id=globex.id, code="X", name="x"))
        s.rollback()
    with globex.session() as s:
        assert s.scalars(select(Site)).all() == []


def test_insert_rolls_back_with_its_transaction(app, acme):
    with acme.session() as s:
        s.insert(Site(code="GONE", name="rolled back"))
        assert s.scalar(select(Site.code)) == "GONE"
        s.rollback()
    with acme.session() as s:
        assert s.scalars(select(Site)).all() == []
