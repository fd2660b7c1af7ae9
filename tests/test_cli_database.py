"""Which database the ``servq`` command uses, run the way a user runs it: from some folder,
with the app made from the environment (no injected test app).

Only ``serve`` (for the embedded default) and ``db upgrade`` create a database or the
instance folder; every other command refuses a missing or unmigrated database with an
error that names the database it looked at and how to point at another.
"""

from __future__ import annotations

import sqlite3
import uuid

import pytest
from click.testing import CliRunner
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from servq import cli
from tests.conftest import TEST_DATABASE_URL


@pytest.fixture
def elsewhere(tmp_path, monkeypatch):
    """A folder with nothing in it, as the working directory, and an environment that
    names no database: ``elsewhere(*args)`` runs ``servq``."""
    folder = tmp_path / "somewhere"
    folder.mkdir()
    monkeypatch.chdir(folder)
    for name in ("DATABASE_URL", "SERVQ_INSTANCE_PATH", "REDIS_URL", "SERVQ_DB_ROLE"):
        monkeypatch.delenv(name, raising=False)

    def run(*args):
        return CliRunner().invoke(cli.make_cli(), list(args))

    run.folder = folder
    return run


def _refused(result, *needles):
    assert result.exit_code == 1, result.output
    assert "Traceback" not in result.output
    assert result.stderr.startswith("error: ") and result.stderr.count("\n") == 1, result.stderr
    for needle in needles:
        assert needle in result.stderr, result.stderr
    return True


@pytest.mark.parametrize("args", [
    ["tenants", "list"],
    ["tenants", "show", "acme"],
    ["tokens", "create", "--tenant", "acme", "--email", "a@b.test"],
    ["users", "add", "--tenant", "acme", "--email", "a@b.test", "--role", "viewer"],
    ["deadlines", "scan"],
    ["kpis", "refresh"],
    ["plugins", "list", "--tenant", "acme"],
])
def test_commands_do_not_create_a_database_in_the_current_folder(elsewhere, args):
    result = elsewhere(*args)
    expected = elsewhere.folder / "instance" / "servq.db"
    assert _refused(result, f"no servq database at {expected}", "DATABASE_URL", "SERVQ_INSTANCE_PATH",
                    "servq db upgrade")
    assert list(elsewhere.folder.iterdir()) == []


def test_onboarding_from_another_folder_creates_nothing(elsewhere, tmp_path):
    manifest = tmp_path / "t.toml"
    manifest.write_text('slug = "t"\nname = "T"\n')
    assert _refused(elsewhere("tenants", "onboard", str(manifest)), "no servq database at")
    assert list(elsewhere.folder.iterdir()) == []


def test_an_unmigrated_sqlite_file_is_named(elsewhere, tmp_path, monkeypatch):
    instance = tmp_path / "inst"
    instance.mkdir()
    sqlite3.connect(instance / "servq.db").close()  # an empty file, never migrated
    monkeypatch.setenv("SERVQ_INSTANCE_PATH", str(instance))
    assert _refused(elsewhere("tenants", "list"), f"sqlite:///{instance / 'servq.db'}", "empty",
                    "servq db upgrade", "DATABASE_URL")
    assert [p.name for p in instance.iterdir()] == ["servq.db"]


def test_db_upgrade_creates_the_instance_folder_then_commands_use_it(elsewhere, tmp_path, monkeypatch):
    instance = tmp_path / "new" / "instance"
    monkeypatch.setenv("SERVQ_INSTANCE_PATH", str(instance))
    result = elsewhere("db", "upgrade")
    assert result.exit_code == 0, result.output
    assert f"sqlite:///{instance / 'servq.db'}: upgraded from an empty database" in result.stdout
    listed = elsewhere("tenants", "list")
    assert listed.exit_code == 0 and "no tenants yet" in listed.stderr, listed.output
    assert list(elsewhere.folder.iterdir()) == []


def test_plugins_list_needs_no_database(elsewhere):
    result = elsewhere("plugins", "list")
    assert result.exit_code == 0 and "property" in result.stdout, result.output
    assert list(elsewhere.folder.iterdir()) == []


@pytest.mark.postgres
def test_an_unmigrated_postgres_database_is_named_without_its_password(elsewhere, monkeypatch):
    admin = create_engine(make_url(TEST_DATABASE_URL), isolation_level="AUTOCOMMIT")
    name = f"servq_empty_{uuid.uuid4().hex[:10]}"
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        url = make_url(TEST_DATABASE_URL).set(database=name, password="hunter2-secret")
        monkeypatch.setenv("DATABASE_URL", url.render_as_string(hide_password=False))
        result = elsewhere("tenants", "list")
        assert _refused(result, url.render_as_string(hide_password=True), "empty", "servq db upgrade",
                        "DATABASE_URL")
        assert "hunter2" not in result.output
        assert list(elsewhere.folder.iterdir()) == []
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()
