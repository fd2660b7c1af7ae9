"""records: index the record an inspection judges (data.subject_record_id)

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-04 21:10:00.000000
"""

from alembic import op

revision = '0009'
down_revision = '0008'
branch_labels = None
depends_on = None

# The expression GET /records/<id>/reviews compares, as SQLAlchemy writes it per dialect.
EXPRESSION = {
    "postgresql": "CAST((data ->> 'subject_record_id') AS VARCHAR)",
    "sqlite": "CAST(JSON_EXTRACT(data, '$.\"subject_record_id\"') AS VARCHAR)",
}


def upgrade() -> None:
    expression = EXPRESSION[op.get_bind().dialect.name]
    op.execute(f"CREATE INDEX ix_records_tenant_id_subject ON records (tenant_id, ({expression}))")


def downgrade() -> None:
    op.execute("DROP INDEX ix_records_tenant_id_subject")
