"""records.data, audit_events.changes, evaluations.items: compressed with lz4 (PostgreSQL)

PostgreSQL compresses a value above about 2 kB before storing it, with pglz unless told
otherwise. An evaluation's items (each item's evidence: a transcript's matched phrases)
are 2 to 6 kB as JSON; a bulk import of 20,000 courier deliveries spent 12 % of the
server's time on its writes compressing them. lz4 compresses and decompresses several
times faster for about the same size (measured: 16 microseconds less per 3 kB value).
Only where the server was built with lz4 (PostgreSQL 14 and later, most packages);
Citus passes the ALTER on to the shards. Values stored before keep their compression
until rewritten. SQLite: nothing to do.

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-05 04:55:00.000000
"""

from alembic import op
import sqlalchemy as sa

revision = '0015'
down_revision = '0014'
branch_labels = None
depends_on = None

COLUMNS = (("records", "data"), ("audit_events", "changes"), ("evaluations", "items"))


def _lz4(bind) -> bool:
    if bind.dialect.name != "postgresql":
        return False
    return bool(bind.execute(sa.text(
        "SELECT 'lz4' = ANY(enumvals) FROM pg_settings WHERE name = 'default_toast_compression'")).scalar())


def _set(method: str) -> None:
    bind = op.get_bind()
    if not _lz4(bind):
        return
    for table, column in COLUMNS:
        op.execute(f"ALTER TABLE {table} ALTER COLUMN {column} SET COMPRESSION {method}")


def upgrade() -> None:
    _set("lz4")


def downgrade() -> None:
    _set("default")
