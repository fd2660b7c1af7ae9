"""platform foundation

Revision ID: 0001
Revises: 
"""

from alembic import op
import sqlalchemy as sa
from sqlalchemy import Text  # noqa: F401  (JSONB rendering)

import servq.core.db  # noqa: F401  (UTCDateTime)
from sqlalchemy.dialects import postgresql
from servq.core.db.migrate import enable_rls

revision = '0001'
down_revision = None
branch_labels = None
depends_on = None

TENANT_TABLES = ['audit_events', 'memberships', 'records', 'sites', 'staff', 'tenant_exports', 'tenant_plugins', 'tokens']


def upgrade() -> None:
    op.create_table('tenants',
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('slug', sa.String(length=63), nullable=False),
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('industry', sa.String(length=63), nullable=False),
    sa.Column('timezone', sa.String(length=63), nullable=False),
    sa.Column('locale', sa.String(length=16), nullable=False),
    sa.Column('created_at', servq.core.db.UTCDateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_tenants')),
    sa.UniqueConstraint('slug', name=op.f('uq_tenants_slug'))
    )
    op.create_table('users',
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('email', sa.String(length=254), nullable=False),
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('password_hash', sa.String(length=255), nullable=True),
    sa.Column('is_active', sa.Boolean(), nullable=False),
    sa.Column('created_at', servq.core.db.UTCDateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_users')),
    sa.UniqueConstraint('email', name=op.f('uq_users_email'))
    )
    op.create_table('audit_events',
    sa.Column('tenant_id', sa.Uuid(), nullable=False),
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('entity', sa.String(length=63), nullable=False),
    sa.Column('entity_id', sa.Uuid(), nullable=False),
    sa.Column('action', sa.String(length=40), nullable=False),
    sa.Column('actor_user_id', sa.Uuid(), nullable=True),
    sa.Column('at', servq.core.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('changes', sa.JSON().with_variant(postgresql.JSONB(astext_type=Text()), 'postgresql'), nullable=False),
    sa.ForeignKeyConstraint(['tenant_id'], ['tenants.id'], name=op.f('fk_audit_events_tenant_id_tenants'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('tenant_id', 'id', name=op.f('pk_audit_events'))
    )
    with op.batch_alter_table('audit_events', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_audit_events_tenant_id_entity_entity_id_at'), ['tenant_id', 'entity', 'entity_id', 'at'], unique=False)

    op.create_table('memberships',
    sa.Column('tenant_id', sa.Uuid(), nullable=False),
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('user_id', sa.Uuid(), nullable=False),
    sa.Column('role', sa.String(length=16), nullable=False),
    sa.Column('created_at', servq.core.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('updated_at', servq.core.db.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['tenant_id'], ['tenants.id'], name=op.f('fk_memberships_tenant_id_tenants'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], name=op.f('fk_memberships_user_id_users'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('tenant_id', 'id', name=op.f('pk_memberships')),
    sa.UniqueConstraint('tenant_id', 'user_id', name=op.f('uq_memberships_tenant_id_user_id'))
    )
    op.create_table('sites',
    sa.Column('tenant_id', sa.Uuid(), nullable=False),
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('code', sa.String(length=63), nullable=False),
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('address', sa.String(length=500), nullable=False),
    sa.Column('active', sa.Boolean(), nullable=False),
    sa.Column('created_at', servq.core.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('updated_at', servq.core.db.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['tenant_id'], ['tenants.id'], name=op.f('fk_sites_tenant_id_tenants'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('tenant_id', 'id', name=op.f('pk_sites')),
    sa.UniqueConstraint('tenant_id', 'code', name=op.f('uq_sites_tenant_id_code'))
    )
    op.create_table('tenant_exports',
    sa.Column('tenant_id', sa.Uuid(), nullable=False),
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('requested_by', sa.Uuid(), nullable=True),
    sa.Column('created_at', servq.core.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('started_at', servq.core.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('finished_at', servq.core.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('error', sa.Text(), nullable=True),
    sa.Column('row_count', sa.Integer(), nullable=True),
    sa.Column('content', sa.LargeBinary(), nullable=True),
    sa.ForeignKeyConstraint(['tenant_id'], ['tenants.id'], name=op.f('fk_tenant_exports_tenant_id_tenants'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('tenant_id', 'id', name=op.f('pk_tenant_exports'))
    )
    with op.batch_alter_table('tenant_exports', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_tenant_exports_tenant_id_created_at'), ['tenant_id', 'created_at'], unique=False)

    op.create_table('tenant_plugins',
    sa.Column('tenant_id', sa.Uuid(), nullable=False),
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('plugin_id', sa.String(length=63), nullable=False),
    sa.Column('active', sa.Boolean(), nullable=False),
    sa.Column('configuration', sa.JSON().with_variant(postgresql.JSONB(astext_type=Text()), 'postgresql'), nullable=False),
    sa.Column('updated_at', servq.core.db.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['tenant_id'], ['tenants.id'], name=op.f('fk_tenant_plugins_tenant_id_tenants'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('tenant_id', 'id', name=op.f('pk_tenant_plugins')),
    sa.UniqueConstraint('tenant_id', 'plugin_id', name=op.f('uq_tenant_plugins_tenant_id_plugin_id'))
    )
    op.create_table('staff',
    sa.Column('tenant_id', sa.Uuid(), nullable=False),
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('code', sa.String(length=63), nullable=False),
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('title', sa.String(length=200), nullable=False),
    sa.Column('site_id', sa.Uuid(), nullable=True),
    sa.Column('user_id', sa.Uuid(), nullable=True),
    sa.Column('active', sa.Boolean(), nullable=False),
    sa.Column('created_at', servq.core.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('updated_at', servq.core.db.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['tenant_id', 'site_id'], ['sites.tenant_id', 'sites.id'], name=op.f('fk_staff_tenant_id_site_id_sites')),
    sa.ForeignKeyConstraint(['tenant_id'], ['tenants.id'], name=op.f('fk_staff_tenant_id_tenants'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], name=op.f('fk_staff_user_id_users'), ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('tenant_id', 'id', name=op.f('pk_staff')),
    sa.UniqueConstraint('tenant_id', 'code', name=op.f('uq_staff_tenant_id_code'))
    )
    with op.batch_alter_table('staff', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_staff_tenant_id_site_id'), ['tenant_id', 'site_id'], unique=False)

    op.create_table('tokens',
    sa.Column('tenant_id', sa.Uuid(), nullable=False),
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('membership_id', sa.Uuid(), nullable=False),
    sa.Column('token_hash', sa.String(length=64), nullable=False),
    sa.Column('label', sa.String(length=100), nullable=False),
    sa.Column('created_at', servq.core.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('expires_at', servq.core.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('revoked_at', servq.core.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('last_used_at', servq.core.db.UTCDateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['tenant_id', 'membership_id'], ['memberships.tenant_id', 'memberships.id'], name=op.f('fk_tokens_tenant_id_membership_id_memberships'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['tenant_id'], ['tenants.id'], name=op.f('fk_tokens_tenant_id_tenants'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('tenant_id', 'id', name=op.f('pk_tokens')),
    sa.UniqueConstraint('tenant_id', 'token_hash', name=op.f('uq_tokens_tenant_id_token_hash'))
    )
    with op.batch_alter_table('tokens', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_tokens_tenant_id_membership_id'), ['tenant_id', 'membership_id'], unique=False)

    op.create_table('records',
    sa.Column('tenant_id', sa.Uuid(), nullable=False),
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('kind', sa.String(length=100), nullable=False),
    sa.Column('site_id', sa.Uuid(), nullable=True),
    sa.Column('staff_id', sa.Uuid(), nullable=True),
    sa.Column('occurred_at', servq.core.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('status', sa.String(length=40), nullable=False),
    sa.Column('data', sa.JSON().with_variant(postgresql.JSONB(astext_type=Text()), 'postgresql'), nullable=False),
    sa.Column('created_by', sa.Uuid(), nullable=True),
    sa.Column('created_at', servq.core.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('updated_at', servq.core.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('deleted_at', servq.core.db.UTCDateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['tenant_id', 'site_id'], ['sites.tenant_id', 'sites.id'], name=op.f('fk_records_tenant_id_site_id_sites')),
    sa.ForeignKeyConstraint(['tenant_id', 'staff_id'], ['staff.tenant_id', 'staff.id'], name=op.f('fk_records_tenant_id_staff_id_staff')),
    sa.ForeignKeyConstraint(['tenant_id'], ['tenants.id'], name=op.f('fk_records_tenant_id_tenants'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('tenant_id', 'id', name=op.f('pk_records'))
    )
    with op.batch_alter_table('records', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_records_tenant_id_kind_occurred_at'), ['tenant_id', 'kind', 'occurred_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_records_tenant_id_occurred_at_id'), ['tenant_id', 'occurred_at', 'id'], unique=False)
        batch_op.create_index(batch_op.f('ix_records_tenant_id_site_id_occurred_at'), ['tenant_id', 'site_id', 'occurred_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_records_tenant_id_staff_id_occurred_at'), ['tenant_id', 'staff_id', 'occurred_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_records_tenant_id_status_occurred_at'), ['tenant_id', 'status', 'occurred_at'], unique=False)


    for table in TENANT_TABLES:
        enable_rls(op, table)


def downgrade() -> None:
    with op.batch_alter_table('records', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_records_tenant_id_status_occurred_at'))
        batch_op.drop_index(batch_op.f('ix_records_tenant_id_staff_id_occurred_at'))
        batch_op.drop_index(batch_op.f('ix_records_tenant_id_site_id_occurred_at'))
        batch_op.drop_index(batch_op.f('ix_records_tenant_id_occurred_at_id'))
        batch_op.drop_index(batch_op.f('ix_records_tenant_id_kind_occurred_at'))

    op.drop_table('records')
    with op.batch_alter_table('tokens', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_tokens_tenant_id_membership_id'))

    op.drop_table('tokens')
    with op.batch_alter_table('staff', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_staff_tenant_id_site_id'))

    op.drop_table('staff')
    op.drop_table('tenant_plugins')
    with op.batch_alter_table('tenant_exports', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_tenant_exports_tenant_id_created_at'))

    op.drop_table('tenant_exports')
    op.drop_table('sites')
    op.drop_table('memberships')
    with op.batch_alter_table('audit_events', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_audit_events_tenant_id_entity_entity_id_at'))

    op.drop_table('audit_events')
    op.drop_table('users')
    op.drop_table('tenants')
