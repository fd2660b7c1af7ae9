"""calibration sessions and their reviews (kept apart from records and evaluations)

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-04 21:01:05.160980
"""

from alembic import op
import sqlalchemy as sa
from sqlalchemy import Text  # noqa: F401  (JSONB rendering)

import servq.core.db  # noqa: F401  (UTCDateTime)
from sqlalchemy.dialects import postgresql
from servq.core.db.migrate import enable_rls

revision = '0011'
down_revision = '0010'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('calibration_sessions',
    sa.Column('tenant_id', sa.Uuid(), nullable=False),
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('title', sa.String(length=200), nullable=False),
    sa.Column('standard_code', sa.String(length=100), nullable=False),
    sa.Column('standard_version', sa.Integer(), nullable=False),
    sa.Column('subject_record_ids', sa.JSON().with_variant(postgresql.JSONB(astext_type=Text()), 'postgresql'), nullable=False),
    sa.Column('participant_ids', sa.JSON().with_variant(postgresql.JSONB(astext_type=Text()), 'postgresql'), nullable=False),
    sa.Column('facilitator_id', sa.Uuid(), nullable=True),
    sa.Column('expert_id', sa.Uuid(), nullable=True),
    sa.Column('blind', sa.Boolean(), nullable=False),
    sa.Column('due_at', servq.core.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('status', sa.String(length=20), nullable=False),
    sa.Column('notes', sa.Text(), nullable=True),
    sa.Column('decisions', sa.JSON().with_variant(postgresql.JSONB(astext_type=Text()), 'postgresql'), nullable=False),
    sa.Column('created_at', servq.core.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('updated_at', servq.core.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('closed_at', servq.core.db.UTCDateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['tenant_id'], ['tenants.id'], name=op.f('fk_calibration_sessions_tenant_id_tenants'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('tenant_id', 'id', name=op.f('pk_calibration_sessions'))
    )
    with op.batch_alter_table('calibration_sessions', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_calibration_sessions_tenant_id_created_at'), ['tenant_id', 'created_at'], unique=False)

    op.create_table('calibration_reviews',
    sa.Column('tenant_id', sa.Uuid(), nullable=False),
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('session_id', sa.Uuid(), nullable=False),
    sa.Column('participant_id', sa.Uuid(), nullable=False),
    sa.Column('subject_record_id', sa.Uuid(), nullable=False),
    sa.Column('answers', sa.JSON().with_variant(postgresql.JSONB(astext_type=Text()), 'postgresql'), nullable=False),
    sa.Column('percent', sa.Double(), nullable=True),
    sa.Column('passed', sa.Boolean(), nullable=True),
    sa.Column('items', sa.JSON().with_variant(postgresql.JSONB(astext_type=Text()), 'postgresql'), nullable=False),
    sa.Column('submitted_at', servq.core.db.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['tenant_id', 'session_id'], ['calibration_sessions.tenant_id', 'calibration_sessions.id'], name='fk_calibration_reviews_session', ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['tenant_id'], ['tenants.id'], name=op.f('fk_calibration_reviews_tenant_id_tenants'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('tenant_id', 'id', name=op.f('pk_calibration_reviews')),
    sa.UniqueConstraint('tenant_id', 'session_id', 'participant_id', 'subject_record_id', name='uq_calibration_reviews_one_per_subject')
    )
    for table in ('calibration_sessions', 'calibration_reviews'):
        enable_rls(op, table)


def downgrade() -> None:
    op.drop_table('calibration_reviews')
    with op.batch_alter_table('calibration_sessions', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_calibration_sessions_tenant_id_created_at'))

    op.drop_table('calibration_sessions')

