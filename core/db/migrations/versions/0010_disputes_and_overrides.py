"""disputes of evaluations, the item overrides they decide, evaluations' original percent and disputed flag

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-04 20:50:20.281873
"""

from alembic import op
import sqlalchemy as sa
from sqlalchemy import Text  # noqa: F401  (JSONB rendering)

import servq.core.db  # noqa: F401  (UTCDateTime)
from sqlalchemy.dialects import postgresql
from servq.core.db.migrate import enable_rls

revision = '0010'
down_revision = '0009'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('disputes',
    sa.Column('tenant_id', sa.Uuid(), nullable=False),
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('record_id', sa.Uuid(), nullable=False),
    sa.Column('standard_code', sa.String(length=100), nullable=False),
    sa.Column('standard_version', sa.Integer(), nullable=False),
    sa.Column('staff_id', sa.Uuid(), nullable=True),
    sa.Column('reviewer_id', sa.Uuid(), nullable=True),
    sa.Column('type', sa.String(length=20), nullable=False),
    sa.Column('reason', sa.Text(), nullable=False),
    sa.Column('evidence', sa.JSON().with_variant(postgresql.JSONB(astext_type=Text()), 'postgresql'), nullable=False),
    sa.Column('items', sa.JSON().with_variant(postgresql.JSONB(astext_type=Text()), 'postgresql'), nullable=False),
    sa.Column('status', sa.String(length=20), nullable=False),
    sa.Column('level', sa.Integer(), nullable=False),
    sa.Column('result', sa.String(length=30), nullable=True),
    sa.Column('arbitrator_id', sa.Uuid(), nullable=True),
    sa.Column('decisions', sa.JSON().with_variant(postgresql.JSONB(astext_type=Text()), 'postgresql'), nullable=False),
    sa.Column('original_percent', sa.Double(), nullable=True),
    sa.Column('final_percent', sa.Double(), nullable=True),
    sa.Column('filed_by', sa.Uuid(), nullable=True),
    sa.Column('filed_at', servq.core.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('decide_by', servq.core.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('decided_at', servq.core.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('appeal_by', servq.core.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('closed_at', servq.core.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('updated_at', servq.core.db.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['tenant_id', 'record_id'], ['records.tenant_id', 'records.id'], name=op.f('fk_disputes_tenant_id_record_id_records'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['tenant_id'], ['tenants.id'], name=op.f('fk_disputes_tenant_id_tenants'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('tenant_id', 'id', name=op.f('pk_disputes'))
    )
    with op.batch_alter_table('disputes', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_disputes_tenant_id_record_id_standard_code'), ['tenant_id', 'record_id', 'standard_code'], unique=False)
        batch_op.create_index(batch_op.f('ix_disputes_tenant_id_staff_id_filed_at'), ['tenant_id', 'staff_id', 'filed_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_disputes_tenant_id_status_filed_at'), ['tenant_id', 'status', 'filed_at'], unique=False)

    op.create_table('evaluation_overrides',
    sa.Column('tenant_id', sa.Uuid(), nullable=False),
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('record_id', sa.Uuid(), nullable=False),
    sa.Column('standard_code', sa.String(length=100), nullable=False),
    sa.Column('item_code', sa.String(length=100), nullable=False),
    sa.Column('outcome', sa.String(length=20), nullable=False),
    sa.Column('points', sa.Double(), nullable=True),
    sa.Column('original', sa.JSON().with_variant(postgresql.JSONB(astext_type=Text()), 'postgresql'), nullable=False),
    sa.Column('reason', sa.Text(), nullable=True),
    sa.Column('dispute_id', sa.Uuid(), nullable=True),
    sa.Column('created_by', sa.Uuid(), nullable=True),
    sa.Column('created_at', servq.core.db.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['tenant_id', 'record_id'], ['records.tenant_id', 'records.id'], name=op.f('fk_evaluation_overrides_tenant_id_record_id_records'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['tenant_id'], ['tenants.id'], name=op.f('fk_evaluation_overrides_tenant_id_tenants'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('tenant_id', 'id', name=op.f('pk_evaluation_overrides')),
    sa.UniqueConstraint('tenant_id', 'record_id', 'standard_code', 'item_code', name='uq_evaluation_overrides_item')
    )
    # Plain ADD COLUMN (SQLite takes it as it is): batch mode would copy the table after
    # reflecting it with its references, whose expression index SQLite cannot reflect.
    op.add_column('evaluations', sa.Column('original_percent', sa.Double(), nullable=True))
    op.add_column('evaluations', sa.Column('disputed', sa.Boolean(), server_default=sa.text('false'),
                                           nullable=False))
    for table in ('disputes', 'evaluation_overrides'):
        enable_rls(op, table)




def downgrade() -> None:
    with op.batch_alter_table('evaluations', schema=None) as batch_op:
        batch_op.drop_column('disputed')
        batch_op.drop_column('original_percent')

    op.drop_table('evaluation_overrides')
    with op.batch_alter_table('disputes', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_disputes_tenant_id_status_filed_at'))
        batch_op.drop_index(batch_op.f('ix_disputes_tenant_id_staff_id_filed_at'))
        batch_op.drop_index(batch_op.f('ix_disputes_tenant_id_record_id_standard_code'))

    op.drop_table('disputes')

