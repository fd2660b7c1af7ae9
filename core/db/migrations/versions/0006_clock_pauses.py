"""clocks.pause_rules, paused_seconds, cap_hits: per-clock pause choice and pause caps

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-04 21:00:00.000000
"""

from alembic import op
import sqlalchemy as sa
from sqlalchemy import Text  # noqa: F401  (JSONB rendering)
from sqlalchemy.dialects import postgresql

revision = '0006'
down_revision = '0005'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('clocks', schema=None) as batch_op:
        batch_op.add_column(sa.Column(
            'pause_rules', sa.JSON().with_variant(postgresql.JSONB(astext_type=Text()), 'postgresql'),
            nullable=True))
        batch_op.add_column(sa.Column('paused_seconds', sa.Float(), server_default=sa.text('0'),
                                      nullable=False))
        batch_op.add_column(sa.Column('cap_hits', sa.Integer(), server_default=sa.text('0'),
                                      nullable=False))


def downgrade() -> None:
    with op.batch_alter_table('clocks', schema=None) as batch_op:
        batch_op.drop_column('cap_hits')
        batch_op.drop_column('paused_seconds')
        batch_op.drop_column('pause_rules')
