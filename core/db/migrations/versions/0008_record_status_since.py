"""records.status_since and records.stalled_at: the stalled-record watch

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-04 21:00:00.000000

``status_since`` is when the record took its status (set at creation and by every
transition); the watch (core/deadlines/stalled.py) finds the records of a kind and status
not moved since a cutoff with one indexed query. ``stalled_at`` marks a stall already
notified, so each stall notifies once; a move clears it.

Backfill: ``updated_at`` (a record's last change, never earlier than its last move), so an
upgrade does not call records stalled before their time; ``occurred_at`` where it is missing.
"""

from alembic import op
import sqlalchemy as sa

import servq.core.db  # noqa: F401  (UTCDateTime)

revision = '0008'
down_revision = '0007'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('records', schema=None) as batch_op:
        batch_op.add_column(sa.Column('status_since', servq.core.db.UTCDateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column('stalled_at', servq.core.db.UTCDateTime(timezone=True), nullable=True))
    op.execute("UPDATE records SET status_since = COALESCE(updated_at, occurred_at)")
    with op.batch_alter_table('records', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_records_tenant_id_kind_status_status_since'),
                              ['tenant_id', 'kind', 'status', 'status_since'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('records', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_records_tenant_id_kind_status_status_since'))
        batch_op.drop_column('stalled_at')
        batch_op.drop_column('status_since')
