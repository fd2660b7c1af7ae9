"""staff: reports_to, the member of staff one reports to (a manager's team in quality files)

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-04 21:20:00.000000
"""

from alembic import op
import sqlalchemy as sa

revision = '0014'
down_revision = '0013'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('staff', schema=None) as batch_op:
        batch_op.add_column(sa.Column('reports_to', sa.Uuid(), nullable=True))
        batch_op.create_index(batch_op.f('ix_staff_tenant_id_reports_to'), ['tenant_id', 'reports_to'], unique=False)
        batch_op.create_foreign_key(batch_op.f('fk_staff_tenant_id_reports_to_staff'), 'staff',
                                    ['tenant_id', 'reports_to'], ['tenant_id', 'id'])


def downgrade() -> None:
    with op.batch_alter_table('staff', schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f('fk_staff_tenant_id_reports_to_staff'), type_='foreignkey')
        batch_op.drop_index(batch_op.f('ix_staff_tenant_id_reports_to'))
        batch_op.drop_column('reports_to')
