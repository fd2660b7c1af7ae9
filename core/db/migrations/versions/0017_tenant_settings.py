"""tenant_settings: a tenant's own values of core's [P] defaults (dispute windows, stall limits)

Revision ID: 0017
Revises: 0016
Create Date: 2026-12-05 05:25:00.000000
"""

from alembic import op
import sqlalchemy as sa
from sqlalchemy import Text  # noqa: F401  (JSONB rendering)

import servq.core.db  # noqa: F401  (UTCDateTime)
from sqlalchemy.dialects import postgresql
from servq.core.db.migrate import enable_rls

revision = '0017'
down_revision = '0016'
branch_labels = None
depends_on = None

JSON = sa.JSON().with_variant(postgresql.JSONB(astext_type=Text()), 'postgresql')
WHEN = servq.core.db.UTCDateTime(timezone=True)


def upgrade() -> None:
    op.create_table('tenant_settings',
    sa.Column('tenant_id', sa.Uuid(), nullable=False),
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('document', JSON, nullable=False),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.Column('updated_by', sa.Uuid(), nullable=True),
    sa.Column('updated_at', WHEN, nullable=False),
    sa.ForeignKeyConstraint(['tenant_id'], ['tenants.id'], name=op.f('fk_tenant_settings_tenant_id_tenants'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('tenant_id', 'id', name=op.f('pk_tenant_settings')),
    sa.UniqueConstraint('tenant_id', name='uq_tenant_settings_tenant')
    )
    enable_rls(op, 'tenant_settings')


def downgrade() -> None:
    op.drop_table('tenant_settings')
