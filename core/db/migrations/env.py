"""Alembic environment: runs on the connection ``servq.core.db.migrate.upgrade`` hands over."""

from alembic import context

import servq.core.models  # noqa: F401  (registers every table)
from servq.core.db import Base

config = context.config
connection = config.attributes.get("connection")
if connection is None:
    raise RuntimeError("run migrations with `servq db upgrade` (servq.core.db.migrate.upgrade)")

context.configure(
    connection=connection,
    target_metadata=Base.metadata,
    render_as_batch=connection.dialect.name == "sqlite",
    compare_type=True,
)
with context.begin_transaction():
    context.run_migrations()
