"""clocks.withdrawals: escalated breaches that the record's later history disproved

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-04 15:20:00.000000
"""

from alembic import op
import sqlalchemy as sa
from sqlalchemy import Text  # noqa: F401  (JSONB rendering)
from sqlalchemy.dialects import postgresql

revision = '0004'
down_revision = '0003'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('clocks', schema=None) as batch_op:
        batch_op.add_column(sa.Column(
            'withdrawals', sa.JSON().with_variant(postgresql.JSONB(astext_type=Text()), 'postgresql'),
            server_default=sa.text("'[]'"), nullable=False))


def downgrade() -> None:
    with op.batch_alter_table('clocks', schema=None) as batch_op:
        batch_op.drop_column('withdrawals')
