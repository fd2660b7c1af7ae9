"""clocks.anchor_at: the due instant of a clock due at a moment; clocks.target widened

A ``deadline`` rule may be due at a moment held in the record (``due``), a limit before it
(``before``) or a local time of day (``due_time``) instead of after a limit: the clock keeps
that instant, before pauses, in ``anchor_at`` so that its due time can be recomputed from
its own row (the breach watch and resume have no standard at hand), and ``target`` holds
the rule as shown (``"30m before data.window.to"``: up to 300 characters).

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-04 21:10:00.000000
"""

from alembic import op
import sqlalchemy as sa

import servq.core.db  # noqa: F401  (UTCDateTime)

revision = '0005'
down_revision = '0004'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('clocks', schema=None) as batch_op:
        batch_op.add_column(sa.Column('anchor_at', servq.core.db.UTCDateTime(timezone=True), nullable=True))
        batch_op.alter_column('target', existing_type=sa.String(length=60), type_=sa.String(length=300),
                              existing_nullable=False)


def downgrade() -> None:
    with op.batch_alter_table('clocks', schema=None) as batch_op:
        batch_op.alter_column('target', existing_type=sa.String(length=300), type_=sa.String(length=60),
                              existing_nullable=False)
        batch_op.drop_column('anchor_at')
