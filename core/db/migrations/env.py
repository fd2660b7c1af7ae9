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
if config.attributes.get("citus"):
    # Each op.create_table distributes its table (servq.core.db.citus): every migration,
    # this one's successors included, lands on Citus without a line of its own.
    from servq.core.db.citus import citus_migration_hook

    citus_migration_hook(context.get_context())
with context.begin_transaction():
    context.run_migrations()
