"""knowledge base: articles, their versions with search keys, record links

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-04 21:10:12.296902
"""

from alembic import op
import sqlalchemy as sa
from sqlalchemy import Text  # noqa: F401  (JSONB rendering)

import servq.core.db  # noqa: F401  (UTCDateTime)
from sqlalchemy.dialects import postgresql
from servq.core.db.migrate import enable_rls

revision = '0013'
down_revision = '0012'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('kb_articles',
    sa.Column('tenant_id', sa.Uuid(), nullable=False),
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('code', sa.String(length=100), nullable=False),
    sa.Column('status', sa.String(length=20), nullable=False),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.Column('published_version', sa.Integer(), nullable=True),
    sa.Column('owner_id', sa.Uuid(), nullable=True),
    sa.Column('review_every_days', sa.Integer(), nullable=False),
    sa.Column('reviewed_at', servq.core.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('review_due_at', servq.core.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('review_notified_for', servq.core.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('source_record_id', sa.Uuid(), nullable=True),
    sa.Column('links', sa.Integer(), server_default=sa.text('0'), nullable=False),
    sa.Column('created_by', sa.Uuid(), nullable=True),
    sa.Column('created_at', servq.core.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('updated_at', servq.core.db.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['tenant_id'], ['tenants.id'], name=op.f('fk_kb_articles_tenant_id_tenants'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('tenant_id', 'id', name=op.f('pk_kb_articles')),
    sa.UniqueConstraint('tenant_id', 'code', name='uq_kb_articles_code')
    )
    with op.batch_alter_table('kb_articles', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_kb_articles_tenant_id_created_at'), ['tenant_id', 'created_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_kb_articles_tenant_id_source_record_id'), ['tenant_id', 'source_record_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_kb_articles_tenant_id_status_review_due_at'), ['tenant_id', 'status', 'review_due_at'], unique=False)

    op.create_table('kb_article_versions',
    sa.Column('tenant_id', sa.Uuid(), nullable=False),
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('article_id', sa.Uuid(), nullable=False),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.Column('title', sa.JSON().with_variant(postgresql.JSONB(astext_type=Text()), 'postgresql'), nullable=False),
    sa.Column('problem', sa.Text(), nullable=False),
    sa.Column('symptoms', sa.Text(), nullable=False),
    sa.Column('cause', sa.Text(), nullable=False),
    sa.Column('solution_steps', sa.JSON().with_variant(postgresql.JSONB(astext_type=Text()), 'postgresql'), nullable=False),
    sa.Column('product', sa.String(length=200), nullable=True),
    sa.Column('category', sa.String(length=200), nullable=True),
    sa.Column('applies_to', sa.JSON().with_variant(postgresql.JSONB(astext_type=Text()), 'postgresql'), nullable=False),
    sa.Column('search_key', sa.Text(), nullable=False),
    sa.Column('kinds_key', sa.Text(), nullable=False),
    sa.Column('created_by', sa.Uuid(), nullable=True),
    sa.Column('created_at', servq.core.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('published_at', servq.core.db.UTCDateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['tenant_id', 'article_id'], ['kb_articles.tenant_id', 'kb_articles.id'], name=op.f('fk_kb_article_versions_tenant_id_article_id_kb_articles'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['tenant_id'], ['tenants.id'], name=op.f('fk_kb_article_versions_tenant_id_tenants'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('tenant_id', 'id', name=op.f('pk_kb_article_versions')),
    sa.UniqueConstraint('tenant_id', 'article_id', 'version', name='uq_kb_article_versions_version')
    )
    op.create_table('kb_links',
    sa.Column('tenant_id', sa.Uuid(), nullable=False),
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('record_id', sa.Uuid(), nullable=False),
    sa.Column('article_id', sa.Uuid(), nullable=False),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.Column('created_by', sa.Uuid(), nullable=True),
    sa.Column('created_at', servq.core.db.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['tenant_id', 'article_id'], ['kb_articles.tenant_id', 'kb_articles.id'], name=op.f('fk_kb_links_tenant_id_article_id_kb_articles'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['tenant_id', 'record_id'], ['records.tenant_id', 'records.id'], name=op.f('fk_kb_links_tenant_id_record_id_records'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['tenant_id'], ['tenants.id'], name=op.f('fk_kb_links_tenant_id_tenants'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('tenant_id', 'id', name=op.f('pk_kb_links')),
    sa.UniqueConstraint('tenant_id', 'record_id', 'article_id', name='uq_kb_links_record_article')
    )
    with op.batch_alter_table('kb_links', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_kb_links_tenant_id_article_id'), ['tenant_id', 'article_id'], unique=False)
    for table in ('kb_articles', 'kb_article_versions', 'kb_links'):
        enable_rls(op, table)


def downgrade() -> None:
    with op.batch_alter_table('kb_links', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_kb_links_tenant_id_article_id'))

    op.drop_table('kb_links')
    op.drop_table('kb_article_versions')
    with op.batch_alter_table('kb_articles', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_kb_articles_tenant_id_status_review_due_at'))
        batch_op.drop_index(batch_op.f('ix_kb_articles_tenant_id_source_record_id'))
        batch_op.drop_index(batch_op.f('ix_kb_articles_tenant_id_created_at'))

    op.drop_table('kb_articles')
