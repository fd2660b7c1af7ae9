"""Tenant isolation: each of the two layers alone keeps tenants apart.

The ORM layer (``core.db.tenancy``) is tested with row-level security out of the way: on
PostgreSQL the app connects as the database owner (a superuser, which skips RLS), so only
the ORM filter stands between the tenants. The RLS layer is tested with the ORM filter
switched off (``ORM_TENANT_FILTER=False``), through HTTP and through a raw connection as
the application role.
"""

from __future__ import annotations

import json
import uuid

import pytest
from sqlalchemy import delete, exists, func, insert, select, text, update
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import aliased

from servq.core.db import tenant_tables
from servq.core.models import Membership, Site, Staff, Tenant, User
from servq.core.db.tenancy import CrossTenantWrite, NoTenantContext
from tests.conftest import APP_ROLE, ON_CITUS


# --------------------------------------------------------------------------- ORM layer


@pytest.fixture
def orm_only(app_config):
    """Settings where the ORM filter is the only layer: on PostgreSQL the app connects as
    the owner (superuser), for whom row-level security does not apply."""
    app_config["DATABASE_APP_ROLE"] = None
    return app_config


@pytest.fixture
def two_tenants(orm_only, factory):
    """Tenants A (2 sites, 2 staff) and B (3 sites, 1 staff), made in their own scopes."""
    handles = {}
    for slug, n_sites, n_staff in (("alpha", 2, 2), ("beta", 3, 1)):
        t = factory.tenant(slug)
        with t.session() as s:
            sites = [Site(code=f"S{i}", name=f"{slug} site {i}") for i in range(n_sites)]
            s.add_all(sites)
            s.flush()
            s.add_all(Staff(code=f"P{i}", name=f"{slug} person {i}", site_id=sites[0].id)
                      for i in range(n_staff))
            s.commit()
            t.site_ids = {site.id for site in sites}
        handles[slug] = t
    return handles["alpha"], handles["beta"]


def test_orm_filter_is_the_only_layer_here(two_tenants, app):
    """Sanity check of the setup: without the ORM filter every tenant's rows are visible,
    so the tests below really exercise the ORM layer alone."""
    a, _ = two_tenants
    app.config["ORM_TENANT_FILTER"] = False
    try:
        with a.session() as s:
            assert len(s.scalars(select(Site)).all()) == 5
    finally:
        app.config["ORM_TENANT_FILTER"] = True


def test_select_entities_and_columns(two_tenants):
    a, b = two_tenants
    with a.session() as s:
        assert {site.id for site in s.scalars(select(Site))} == a.site_ids
        assert {row.tenant_id for row in s.execute(select(Site.tenant_id, Site.name))} == {a.id}
        assert sorted(s.scalars(select(Site.name))) == ["alpha site 0", "alpha site 1"]
        assert s.scalar(select(func.count(Site.id))) == 2
        assert s.scalar(select(func.max(Site.name))) == "alpha site 1"


def test_get_by_primary_key(two_tenants):
    a, b = two_tenants
    b_site = next(iter(b.site_ids))
    a_site = next(iter(a.site_ids))
    with a.session() as s:
        assert s.get(Site, (b.id, b_site)) is None
        assert s.get(Site, (a.id, a_site)) is not None
        # Naming A's tenant with B's id does not find B's row either.
        assert s.get(Site, (a.id, b_site)) is None


def test_counts_over_subqueries_are_filtered(two_tenants):
    """core.api.pagination counts over a subquery; the filter must reach inside it."""
    a, b = two_tenants
    with a.session() as s:
        assert s.scalar(select(func.count()).select_from(select(Site).subquery())) == 2
        capped = select(Site).order_by(Site.code).order_by(None).limit(10_001).subquery()
        assert s.scalar(select(func.count()).select_from(capped)) == 2
        assert s.scalar(select(func.count()).select_from(Site)) == 2
        assert s.scalar(select(func.count()).select_from(select(Site.id).cte())) == 2
        b_site = next(iter(b.site_ids))
        assert s.scalar(select(exists().where(Site.id == b_site))) is False
        assert s.scalar(select(Site.id).where(Site.id.in_(select(Site.id).where(Site.id == b_site)))) is None


def test_pagination_total_counts_only_own_rows(two_tenants):
    a, b = two_tenants
    r = a.api.get("/api/v1/sites?page_size=1")
    assert r.status_code == 200
    meta = json.loads(r.headers["X-Pagination"])
    assert meta["total"] == 2 and meta["total_pages"] == 2
    meta = json.loads(b.api.get("/api/v1/sites").headers["X-Pagination"])
    assert meta["total"] == 3


def test_joins_and_aliases(two_tenants):
    a, _ = two_tenants
    with a.session() as s:
        rows = s.execute(
            select(Staff.name, Site.name).join(Site, Site.id == Staff.site_id)
        ).all()
        assert len(rows) == 2 and all(r[0].startswith("alpha") and r[1].startswith("alpha") for r in rows)
        # A join on id alone (no tenant_id) still cannot reach into B.
        other = aliased(Site)
        pairs = s.execute(select(Site.id, other.id).join(other, other.code == Site.code)).all()
        assert {p[0] for p in pairs} == a.site_ids and {p[1] for p in pairs} == a.site_ids
        # A Cartesian product with the global users table keeps only A's sites.
        users = s.execute(select(Site.tenant_id, User.email).join(User, User.email.like("%"))).all()
        assert users and {u[0] for u in users} == {a.id}


def test_bulk_update_and_delete_touch_only_own_rows(two_tenants):
    a, b = two_tenants
    with a.session() as s:
        result = s.execute(update(Site).values(name="renamed"))
        assert result.rowcount == 2
        result = s.execute(delete(Staff))
        assert result.rowcount == 2
        s.commit()
    with b.session() as s:
        assert "renamed" not in set(s.scalars(select(Site.name)))
        assert s.scalar(select(func.count()).select_from(Staff)) == 1
    with a.session() as s:
        assert set(s.scalars(select(Site.name))) == {"renamed"}
        assert s.scalar(select(func.count(Staff.id))) == 0


def test_no_tenant_means_failure_not_all_tenants(two_tenants, factory):
    with factory.session() as s:  # a system session: no tenant
        statements = [
            select(Site),
            select(Site.name),
            select(func.count()).select_from(select(Site).subquery()),
            select(func.count()).select_from(Site),
            update(Site).values(name="x"),
            delete(Staff),
            insert(Site).values(id=uuid.uuid4(), code="BULK", name="bulk"),
            select(User).where(exists().where(Membership.user_id == User.id)),
        ]
        for stmt in statements:
            with pytest.raises(NoTenantContext):
                s.execute(stmt)
            s.rollback()
        with pytest.raises(NoTenantContext):
            s.get(Site, (two_tenants[0].id, next(iter(two_tenants[0].site_ids))))
        s.rollback()
        s.add(Site(code="NEW", name="nobody's"))
        with pytest.raises(NoTenantContext):
            s.flush()
        s.rollback()
    a, _ = two_tenants
    with a.session() as s:
        assert s.scalar(select(func.count(Site.id))) == 2
        assert "x" not in set(s.scalars(select(Site.name)))


def test_writing_another_tenants_row_fails(two_tenants):
    a, b = two_tenants
    with a.session() as s:
        s.add(Site(tenant_id=b.id, code="EVIL", name="planted"))
        with pytest.raises(CrossTenantWrite):
            s.flush()
        s.rollback()
        site = s.scalars(select(Site)).first()
        site.tenant_id = b.id
        with pytest.raises(CrossTenantWrite):
            s.flush()
        s.rollback()
    with b.session() as s:
        assert "planted" not in set(s.scalars(select(Site.name)))
        assert s.scalar(select(func.count(Site.id))) == 3


def test_new_rows_are_stamped_with_the_session_tenant(two_tenants):
    a, _ = two_tenants
    with a.session() as s:
        site = Site(code="NEW", name="stamped")
        s.add(site)
        s.commit()
        assert site.tenant_id == a.id


def test_system_session_reads_global_tables(two_tenants, factory):
    with factory.session() as s:
        assert {t.slug for t in s.scalars(select(Tenant))} == {"alpha", "beta"}
        assert {"owner@alpha.test", "owner@beta.test"} <= set(s.scalars(select(User.email)))


# --------------------------------------------------------------------------- RLS layer

postgres = pytest.mark.postgres


@pytest.fixture
def rls_only(app_config):
    """Settings where row-level security is the only layer: the ORM filter is off."""
    app_config["ORM_TENANT_FILTER"] = False
    return app_config


@postgres
def test_rls_alone_hides_other_tenants_over_http(rls_only, factory, database):
    acme = factory.tenant("acme")
    globex = factory.tenant("globex")
    site = acme.api.post("/api/v1/sites", json={"code": "A", "name": "Acme HQ"}).json
    url = f"/api/v1/sites/{site['id']}"
    assert globex.api.get(url).status_code == 404
    assert globex.api.patch(url, json={"name": "x"}, etag="*").status_code == 404
    assert globex.api.delete(url, etag="*").status_code == 404
    r = globex.api.get("/api/v1/sites")
    assert r.json == [] and json.loads(r.headers["X-Pagination"])["total"] == 0
    assert acme.api.get(url).json["name"] == "Acme HQ"
    # The ORM filter really was off: the owner (no RLS) sees what the ORM did not filter.
    with database["engine"].connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM sites")).scalar() == 1
    with globex.session() as s:
        assert s.info["orm_filter"] is False
        assert s.scalars(select(Site)).all() == []


def _as_app_role(conn, tenant_id: uuid.UUID | None = None) -> None:
    if ON_CITUS:
        # As servq's Citus session mode does (servq.core.db.citus): SET LOCAL, alone in its
        # message, reaches the workers; set_config stays on the coordinator.
        conn.execute(text("SET LOCAL citus.propagate_set_commands TO 'local'"))
    conn.execute(text(f'SET LOCAL ROLE "{APP_ROLE}"'))
    if tenant_id is not None:
        if ON_CITUS:
            conn.execute(text(f"SET LOCAL servq.tenant_id = '{uuid.UUID(str(tenant_id))}'"))
        else:
            conn.execute(text("SELECT set_config('servq.tenant_id', :t, true)"), {"t": str(tenant_id)})


@postgres
def test_rls_on_a_raw_connection_as_the_app_role(rls_only, factory, database):
    acme = factory.tenant("acme")
    globex = factory.tenant("globex")
    assert acme.api.post("/api/v1/sites", json={"code": "A", "name": "A"}).status_code == 201
    engine = database["engine"]
    with engine.connect() as conn:
        with conn.begin():
            _as_app_role(conn)
            for table in tenant_tables():
                assert conn.execute(text(f'SELECT count(*) FROM "{table}"')).scalar() == 0, table
        with conn.begin():
            _as_app_role(conn, globex.id)
            assert conn.execute(text("SELECT count(*) FROM sites")).scalar() == 0
            assert conn.execute(text("SELECT count(*) FROM memberships")).scalar() == 1
            assert conn.execute(text("UPDATE sites SET name = 'x'")).rowcount == 0
            assert conn.execute(text("DELETE FROM sites")).rowcount == 0
        with conn.begin():
            _as_app_role(conn, acme.id)
            assert conn.execute(text("SELECT count(*) FROM sites")).scalar() == 1
        for tenant_in_context in (globex.id, None):
            trans = conn.begin()
            _as_app_role(conn, tenant_in_context)
            with pytest.raises(DBAPIError, match="row-level security"):
                conn.execute(
                    text("INSERT INTO sites (tenant_id, id, code, name, address, active, created_at, updated_at) "
                         "VALUES (:t, :i, 'EVIL', 'planted', '', true, now(), now())"),
                    {"t": str(acme.id), "i": str(uuid.uuid4())},
                )
            trans.rollback()
        with conn.begin():
            _as_app_role(conn, acme.id)
            assert conn.execute(text("SELECT count(*) FROM sites WHERE code = 'EVIL'")).scalar() == 0


@postgres
def test_app_role_cannot_bypass_rls(database):
    with database["engine"].connect() as conn:
        role = conn.execute(
            text("SELECT rolsuper, rolbypassrls FROM pg_roles WHERE rolname = :r"), {"r": APP_ROLE}
        ).one()
        assert role.rolsuper is False and role.rolbypassrls is False
        rows = conn.execute(text(
            "SELECT c.relname, pg_get_userbyid(c.relowner) AS owner, c.relrowsecurity, c.relforcerowsecurity, "
            "EXISTS (SELECT 1 FROM pg_policy p WHERE p.polrelid = c.oid) AS has_policy "
            "FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
            "WHERE n.nspname = 'public' AND c.relkind = 'r'"
        )).all()
        by_name = {r.relname: r for r in rows}
        assert all(r.owner != APP_ROLE for r in rows)
        # The app role is not a member of the owning roles either (it would inherit ownership).
        owners = {r.owner for r in rows}
        for owner in owners:
            member = conn.execute(text("SELECT pg_has_role(:r, :o, 'MEMBER')"), {"r": APP_ROLE, "o": owner}).scalar()
            assert member is False, owner
        for table in tenant_tables():
            assert table in by_name, f"{table} is missing from the database (migration not regenerated?)"
            t = by_name[table]
            assert t.relrowsecurity and t.relforcerowsecurity and t.has_policy, table


@postgres
def test_the_app_runs_as_the_app_role(app):
    """The suite's app connects with row-level security in force."""
    with app.extensions["servq.engine"].connect() as conn:
        assert conn.execute(text("SELECT current_user")).scalar() == APP_ROLE
