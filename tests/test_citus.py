"""On a Citus coordinator (TEST_DATABASE_URL with the ``citus`` extension, docs/citus.md):
every tenant table distributed by tenant_id and colocated, the global tables reference
tables, and the RLS context reaching the workers. Skipped elsewhere."""

from __future__ import annotations

import psycopg
import pytest
from click.testing import CliRunner
from sqlalchemy import text
from sqlalchemy.engine import make_url

from servq import cli
from servq.core.db import tenant_tables
from servq.core.db.citus import distribution
from tests.conftest import APP_ROLE, ON_CITUS

pytestmark = pytest.mark.skipif(not ON_CITUS, reason="needs TEST_DATABASE_URL on a Citus coordinator")

SITES = "/api/v1/sites"


def test_every_tenant_table_is_distributed_by_tenant_id_and_colocated(database):
    with database["engine"].connect() as conn:
        held = distribution(conn)
        columns = dict(conn.execute(text(
            "SELECT logicalrelid::regclass::text, column_to_column_name(logicalrelid, partkey) "
            "FROM pg_dist_partition WHERE partmethod = 'h'")).all())
    tenant = set(tenant_tables())
    assert tenant, "no tenant tables"
    not_distributed = sorted(t for t in tenant if held.get(t, ("missing",))[0] != "distributed")
    assert not not_distributed, f"tenant tables not distributed on Citus: {not_distributed}"
    assert {columns[t] for t in tenant} == {"tenant_id"}
    assert len({held[t][1] for t in tenant}) == 1, "tenant tables in more than one colocation group"
    others = sorted(t for t, (kind, _) in held.items()
                    if t not in tenant and t != "alembic_version" and kind != "reference")
    assert not others, f"global tables that are not reference tables: {others}"


def test_distribute_again_changes_nothing(database, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("DATABASE_URL", database["url"])
    monkeypatch.delenv("SERVQ_INSTANCE_PATH", raising=False)
    result = CliRunner().invoke(cli.make_cli(), ["db", "distribute"])
    assert result.exit_code == 0, result.output
    assert "nothing to do" in result.output


def test_tenants_stay_apart_through_the_api_and_on_a_worker(database, acme, globex):
    for tenant, code in ((acme, "A1"), (globex, "B1")):
        r = tenant.api.post(SITES, json={"code": code, "name": code})
        assert r.status_code == 201, r.get_json()
    b_id = globex.api.get(SITES).get_json()[0]["id"]
    assert acme.api.get(f"{SITES}/{b_id}").status_code == 404
    assert [s["code"] for s in acme.api.get(SITES).get_json()] == ["A1"]

    # A raw connection to a worker, as the app role, with acme's context.
    url = make_url(database["url"])
    with database["engine"].connect() as conn:
        workers = conn.execute(text(
            "SELECT nodename, nodeport FROM pg_dist_node WHERE noderole = 'primary' "
            "AND nodeport <> :p AND shouldhaveshards ORDER BY nodeport"), {"p": url.port or 5432}).all()
    assert workers, "no worker nodes"
    seen = set()
    for host, port in workers:
        with psycopg.connect(host=host, port=port, dbname=url.database, user=APP_ROLE) as raw:
            raw.execute("SET citus.propagate_set_commands TO 'local'")
            with raw.transaction():
                raw.execute(f"SET LOCAL servq.tenant_id = '{acme.id}'")
                seen |= {row[0] for row in raw.execute("SELECT code FROM sites")}
                assert raw.execute("SELECT count(*) FROM sites WHERE tenant_id = %s",
                                   (globex.id,)).fetchone()[0] == 0
    assert seen == {"A1"}


def test_db_distribute_converts_a_single_node_database(database, acme, tmp_path, monkeypatch):
    """Every table made local again (as a single-node servq database moved onto the
    coordinator), then ``servq db distribute``: distributed again, rows and keys kept."""
    assert acme.api.post(SITES, json={"code": "K1", "name": "K1"}).status_code == 201
    engine = database["engine"]
    with engine.begin() as conn:
        conn.execute(text("SET LOCAL citus.multi_shard_modify_mode TO 'sequential'"))
        conn.execute(text("SELECT undistribute_table('sites', cascade_via_foreign_keys => true)"))
        keys = conn.execute(text("SELECT count(*) FROM pg_constraint WHERE contype = 'f'")).scalar()
        assert {kind for kind, _ in distribution(conn).values()} == {"local"}
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("DATABASE_URL", database["url"])
    monkeypatch.delenv("SERVQ_INSTANCE_PATH", raising=False)
    result = CliRunner().invoke(cli.make_cli(), ["db", "distribute"])
    assert result.exit_code == 0, result.output
    assert "tables distributed by tenant_id" in result.output
    with engine.connect() as conn:
        held = distribution(conn)
        assert {held[t][0] for t in tenant_tables()} == {"distributed"}
        assert conn.execute(text("SELECT count(*) FROM pg_constraint WHERE contype = 'f'")).scalar() == keys
    assert [s["code"] for s in acme.api.get(SITES).get_json()] == ["K1"]
