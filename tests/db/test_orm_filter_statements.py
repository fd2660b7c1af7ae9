"""The ORM tenant filter on every shape of statement: SELECTs carry the tenant as a bound
parameter of one shared option; ORM bulk INSERT/UPDATE, INSERT … SELECT, UPDATE and
DELETE carry it inside their criteria (their parameters may name columns)."""

from __future__ import annotations

import uuid

import pytest
from sqlalchemy import delete, insert, literal, select, update

from servq.core.models import Site


@pytest.fixture
def orm_only_settings(app_config):
    """The ORM filter alone: on PostgreSQL the app connects as the owner (a superuser,
    whom row-level security does not stop)."""
    app_config["DATABASE_APP_ROLE"] = None
    return app_config


def _sites(tenant, *codes):
    with tenant.session() as s:
        s.add_all(Site(code=c, name=f"{tenant.slug} {c}") for c in codes)
        s.commit()


def test_bulk_and_set_based_statements_stay_in_the_tenant(orm_only_settings, acme, globex):
    _sites(acme, "A1", "A2")
    _sites(globex, "G1")
    with acme.session() as s:
        s.execute(insert(Site), [{"id": uuid.uuid4(), "tenant_id": acme.id, "code": "A3", "name": "bulk"}])
        # INSERT … SELECT copies only this tenant's rows, whatever the WHERE says.
        s.execute(insert(Site).from_select(
            ["tenant_id", "id", "code", "name"],
            select(Site.tenant_id, literal(uuid.uuid4()), literal("COPY"), Site.name)
            .where(Site.code.in_(["A1", "G1"]))))
        ids = s.scalars(select(Site.id)).all()
        s.execute(update(Site), [{"tenant_id": acme.id, "id": i, "address": "bulk"} for i in ids])
        s.execute(update(Site).where(Site.code.in_(["A2", "G1"])), {"name": "renamed"})
        s.execute(delete(Site).where(Site.code.in_(["A1", "G1"])))
        s.commit()
    with acme.session() as s:
        rows = sorted(s.execute(select(Site.code, Site.name, Site.address)).all())
        assert rows == [("A2", "renamed", "bulk"), ("A3", "bulk", "bulk"), ("COPY", "acme A1", "bulk")]
    with globex.session() as s:
        assert s.execute(select(Site.code, Site.name, Site.address)).all() == [("G1", "globex G1", "")]


def test_expired_attributes_reload_within_the_tenant(orm_only_settings, acme, globex):
    _sites(acme, "A1")
    with acme.session() as s:
        site = s.scalar(select(Site))
        s.expire(site)
        assert site.code == "A1"  # reloaded by a column load, with the tenant parameter
        s.refresh(site)
        assert site.name == "acme A1"
        # The same statement object serves every tenant: only the parameter differs.
    with globex.session() as s:
        assert s.scalar(select(Site)) is None
        assert s.get(Site, (acme.id, site.id)) is None
