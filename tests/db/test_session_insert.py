"""``TenantSession.insert``: one row written at once, as ``add`` + ``flush`` would."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta, timezone

import pytest
from sqlalchemy import inspect, select

from servq.core.models import Record, Site, Staff
from servq.core.db.tenancy import CrossTenantWrite, NoTenantContext


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
    from servq.core.db.session import new_session

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


_AWKWARD = {"title": "它's a \\ \"quoted\" line\nünïcode \u2028", "tags": ["a'b", "E'x'", "$1", "--"],
            "nested": {"n": 1.5, "none": None, "big": 12345678901234, "neg": -0.0}}


@pytest.fixture
def statements(app):
    from sqlalchemy import event

    engine = app.extensions["servq.engine"]
    seen = []

    def listen(conn, cursor, statement, parameters, context, executemany):
        seen.append(" ".join(statement.split()))

    event.listen(engine, "before_cursor_execute", listen)
    yield seen
    event.remove(engine, "before_cursor_execute", listen)


@pytest.mark.postgres
@pytest.mark.plain_postgres
def test_a_held_back_insert_writes_every_value_as_stored(app, acme, statements):
    """Right after TenantSession.begin_with (a request's authentication) the INSERT is
    held back and sent with the COMMIT, its values written as literals: they come back
    as they went in."""
    from servq.core.db.fast import prepared

    begin = prepared("testbegin", "SELECT $1::int", ("int",))
    occurred = datetime(2026, 3, 2, 9, 30, 0, 123456, tzinfo=timezone(timedelta(hours=8)))
    ids = []
    for n in range(2):  # the first has the statement prepared with the next BEGIN
        with acme.session() as s:
            assert s.begin_with(begin, (n,)) == [(n,)]
            record = Record(kind="observation", occurred_at=occurred, data=_AWKWARD,
                            status="open", escalation_level=n)
            s.insert(record)
            s.commit()
            ids.append(record.id)
    sent = [text for text in statements if text.startswith("EXECUTE servq_insert_")]
    # The second at least (the first too when the connection had it prepared already).
    assert sent and all(text.endswith("; COMMIT") for text in sent), statements
    with acme.session() as s:
        for n, record_id in enumerate(ids):
            row = s.get(Record, (acme.id, record_id))
            assert row.data == _AWKWARD and row.occurred_at == occurred
            assert (row.escalation_level, row.site_id, row.timestamps) == (n, None, {})


@pytest.mark.postgres
@pytest.mark.plain_postgres
def test_a_held_back_insert_goes_before_what_was_queued_after_it(app, acme, statements):
    """A bulk INSERT queued after a held-back one (core.db.fast.bulk, wait=False) is sent
    after it, whichever statement comes next."""
    from servq.core.audit import audit_row
    from servq.core.db.fast import prepared
    from servq.core.models import AuditEvent
    from servq.core.db.fast import insert_rows

    begin = prepared("testbegin", "SELECT $1::int", ("int",))
    for n in range(2):
        with acme.session() as s:
            s.begin_with(begin, (n,))
            record = Record(kind="observation", occurred_at=datetime.now(timezone.utc),
                            data={"title": f"R{n}"})
            s.insert(record)
            insert_rows(s.connection(), AuditEvent.__table__,
                        [audit_row(s, "record", record.id, "noted", None, {"n": n})], wait=False)
            assert s.scalar(select(Site.id).limit(1)) is None  # sends both, in order
            s.commit()
    held = max(i for i, text in enumerate(statements) if text.startswith("EXECUTE servq_insert_"))
    queued = max(i for i, text in enumerate(statements) if "INSERT INTO audit_events" in text)
    assert held < queued, statements
    assert not statements[held].endswith("COMMIT")
    with acme.session() as s:
        assert s.get(Record, (acme.id, record.id)).data == {"title": "R1"}
        assert s.scalar(select(AuditEvent.changes).where(AuditEvent.entity_id == record.id)) == {"n": 1}


@pytest.mark.postgres
def test_nothing_is_held_back_after_a_queued_bulk_insert(app, acme, statements):
    """An INSERT queued by core.db.fast.bulk before TenantSession.insert: the insert is
    not held back (it would go first); the queued one is sent before it, as usual."""
    from servq.core.audit import audit_row
    from servq.core.db.fast import prepared
    from servq.core.models import AuditEvent
    from servq.core.db.fast import insert_rows

    begin = prepared("testbegin", "SELECT $1::int", ("int",))
    for n in range(2):
        with acme.session() as s:
            s.begin_with(begin, (n,))
            record_id = uuid.uuid4()
            insert_rows(s.connection(), AuditEvent.__table__,
                        [audit_row(s, "record", record_id, "noted", None, {"n": n})], wait=False)
            s.insert(Record(id=record_id, kind="observation",
                            occurred_at=datetime.now(timezone.utc), data={"title": f"Q{n}"}))
            s.commit()
    assert not any(text.startswith("EXECUTE servq_insert_") for text in statements), statements
    assert sum("INSERT INTO records" in text for text in statements) == 2
    with acme.session() as s:
        assert s.get(Record, (acme.id, record_id)).data == {"title": "Q1"}
        assert s.scalar(select(AuditEvent.changes).where(AuditEvent.entity_id == record_id)) == {"n": 1}
