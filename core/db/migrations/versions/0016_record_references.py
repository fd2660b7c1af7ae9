"""records.reference: a kind's reference field (a waybill number), one live record each

RecordKind.reference names a top-level field of a kind's data that identifies a record
of the kind in the tenant (a waybill number, a ticket number). Its value is kept in
records.reference, unique per tenant and kind among live records (a deleted record's
reference may be used again), and searchable (GET /records?reference=).

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-05 05:10:00.000000
"""

from alembic import op
import sqlalchemy as sa

revision = '0016'
down_revision = '0015'
branch_labels = None
depends_on = None

LIVE = "reference IS NOT NULL AND deleted_at IS NULL"


def upgrade() -> None:
    with op.batch_alter_table('records', schema=None) as batch_op:
        batch_op.add_column(sa.Column('reference', sa.String(length=200), nullable=True))
    op.create_index('uq_records_tenant_id_reference_kind', 'records', ['tenant_id', 'reference', 'kind'],
                    unique=True, postgresql_where=sa.text(LIVE), sqlite_where=sa.text(LIVE))


def downgrade() -> None:
    op.drop_index('uq_records_tenant_id_reference_kind', table_name='records')
    # A plain ALTER (SQLite has one since 3.35): a batch copy of the table would lose the
    # expression index ix_records_tenant_id_subject, which SQLAlchemy cannot reflect.
    op.drop_column('records', 'reference')
