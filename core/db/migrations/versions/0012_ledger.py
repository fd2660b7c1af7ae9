"""rewards and penalties ledger: entries, the tenant's rules, repeat-fault flags

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-04 21:25:00
"""

from alembic import op
import sqlalchemy as sa
from sqlalchemy import Text  # noqa: F401  (JSONB rendering)

import servq.core.db  # noqa: F401  (UTCDateTime)
from sqlalchemy.dialects import postgresql
from servq.core.db.migrate import enable_rls

revision = '0012'
down_revision = '0011'
branch_labels = None
depends_on = None

JSON = sa.JSON().with_variant(postgresql.JSONB(astext_type=Text()), 'postgresql')
WHEN = servq.core.db.UTCDateTime(timezone=True)


def upgrade() -> None:
    op.create_table('ledger_entries',
    sa.Column('tenant_id', sa.Uuid(), nullable=False),
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('staff_id', sa.Uuid(), nullable=False),
    sa.Column('site_id', sa.Uuid(), nullable=True),
    sa.Column('kind', sa.String(length=10), nullable=False),
    sa.Column('points', sa.Double(), nullable=False),
    sa.Column('amount', sa.Double(), nullable=True),
    sa.Column('currency', sa.String(length=3), nullable=True),
    sa.Column('rule', sa.String(length=40), nullable=False),
    sa.Column('record_id', sa.Uuid(), nullable=True),
    sa.Column('standard_code', sa.String(length=100), nullable=True),
    sa.Column('item_code', sa.String(length=100), nullable=True),
    sa.Column('complaint_id', sa.Uuid(), nullable=True),
    sa.Column('month', sa.String(length=7), nullable=False),
    sa.Column('status', sa.String(length=10), nullable=False),
    sa.Column('large', sa.Boolean(), nullable=False),
    sa.Column('note', sa.Text(), nullable=True),
    sa.Column('source_key', sa.String(length=300), nullable=True),
    sa.Column('created_by', sa.Uuid(), nullable=True),
    sa.Column('created_at', WHEN, nullable=False),
    sa.Column('updated_at', WHEN, nullable=False),
    sa.ForeignKeyConstraint(['tenant_id', 'staff_id'], ['staff.tenant_id', 'staff.id'], name=op.f('fk_ledger_entries_tenant_id_staff'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['tenant_id'], ['tenants.id'], name=op.f('fk_ledger_entries_tenant_id_tenants'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('tenant_id', 'id', name=op.f('pk_ledger_entries')),
    sa.UniqueConstraint('tenant_id', 'source_key', name='uq_ledger_entries_source_key')
    )
    with op.batch_alter_table('ledger_entries', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_ledger_entries_tenant_id_staff_id_month'), ['tenant_id', 'staff_id', 'month'], unique=False)
        batch_op.create_index(batch_op.f('ix_ledger_entries_tenant_id_month_status'), ['tenant_id', 'month', 'status'], unique=False)
        batch_op.create_index(batch_op.f('ix_ledger_entries_tenant_id_record_id_standard_code'), ['tenant_id', 'record_id', 'standard_code'], unique=False)

    op.create_table('ledger_rules',
    sa.Column('tenant_id', sa.Uuid(), nullable=False),
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('document', JSON, nullable=False),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.Column('updated_by', sa.Uuid(), nullable=True),
    sa.Column('updated_at', WHEN, nullable=False),
    sa.ForeignKeyConstraint(['tenant_id'], ['tenants.id'], name=op.f('fk_ledger_rules_tenant_id_tenants'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('tenant_id', 'id', name=op.f('pk_ledger_rules')),
    sa.UniqueConstraint('tenant_id', name='uq_ledger_rules_tenant')
    )
    op.create_table('ledger_flags',
    sa.Column('tenant_id', sa.Uuid(), nullable=False),
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('staff_id', sa.Uuid(), nullable=False),
    sa.Column('month', sa.String(length=7), nullable=False),
    sa.Column('count', sa.Integer(), nullable=False),
    sa.Column('items', JSON, nullable=False),
    sa.Column('status', sa.String(length=10), nullable=False),
    sa.Column('flag_key', sa.String(length=100), nullable=False),
    sa.Column('created_at', WHEN, nullable=False),
    sa.ForeignKeyConstraint(['tenant_id'], ['tenants.id'], name=op.f('fk_ledger_flags_tenant_id_tenants'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('tenant_id', 'id', name=op.f('pk_ledger_flags')),
    sa.UniqueConstraint('tenant_id', 'flag_key', name='uq_ledger_flags_key')
    )
    with op.batch_alter_table('ledger_flags', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_ledger_flags_tenant_id_month_status'), ['tenant_id', 'month', 'status'], unique=False)
    for table in ('ledger_entries', 'ledger_rules', 'ledger_flags'):
        enable_rls(op, table)


def downgrade() -> None:
    op.drop_table('ledger_flags')
    op.drop_table('ledger_rules')
    with op.batch_alter_table('ledger_entries', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_ledger_entries_tenant_id_record_id_standard_code'))
        batch_op.drop_index(batch_op.f('ix_ledger_entries_tenant_id_month_status'))
        batch_op.drop_index(batch_op.f('ix_ledger_entries_tenant_id_staff_id_month'))
    op.drop_table('ledger_entries')
