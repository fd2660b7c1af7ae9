"""schedules: quotas per period and per staff member, working days only

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-04 21:00:00.000000
"""

from alembic import op
import sqlalchemy as sa
from sqlalchemy import Text  # noqa: F401  (JSONB rendering)
from sqlalchemy.dialects import postgresql

revision = '0007'
down_revision = '0006'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('schedules', schema=None) as batch_op:
        batch_op.add_column(sa.Column('per', sa.String(length=10), server_default=sa.text("'schedule'"),
                                      nullable=False))
        batch_op.add_column(sa.Column(
            'staff_selector', sa.JSON().with_variant(postgresql.JSONB(astext_type=Text()), 'postgresql'),
            nullable=True))
        batch_op.add_column(sa.Column('staff_field', sa.String(length=100), nullable=True))
        batch_op.add_column(sa.Column('min_count', sa.Integer(), server_default=sa.text('1'), nullable=False))
        batch_op.add_column(sa.Column('working_days', sa.Boolean(), server_default=sa.false(), nullable=False))


def downgrade() -> None:
    with op.batch_alter_table('schedules', schema=None) as batch_op:
        batch_op.drop_column('working_days')
        batch_op.drop_column('min_count')
        batch_op.drop_column('staff_field')
        batch_op.drop_column('staff_selector')
        batch_op.drop_column('per')
