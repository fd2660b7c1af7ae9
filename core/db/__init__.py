"""The storage floor: declarative base, column types, tenant-owned tables, errors.

It imports no domain package. Engines and sessions live in :mod:`servq.core.db.session`,
tenancy in :mod:`servq.core.db.tenancy`, the fast lane behind :mod:`servq.core.db.fast`;
this module only knows how to describe data the same way on SQLite and PostgreSQL.
"""

from __future__ import annotations

import uuid
from datetime import datetime, timezone
from typing import Any

from sqlalchemy import JSON, DateTime, MetaData, String, TypeDecorator, Uuid
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

NAMING = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_N_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class UTCDateTime(TypeDecorator):
    """Timezone-aware datetimes stored in UTC on every backend.

    SQLite keeps no offset, so values are normalised to UTC on the way in and marked
    UTC on the way out; naive datetimes are refused rather than guessed.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime: servq stores only timezone-aware instants")
        value = value.astimezone(timezone.utc)
        if dialect.name == "sqlite":
            return value.replace(tzinfo=None)
        return value

    def process_result_value(self, value: datetime | None, dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=timezone.utc)
        return value.astimezone(timezone.utc)


JSONType = JSON().with_variant(JSONB(), "postgresql")


class NoTenantContext(RuntimeError):
    """A tenant-owned table was queried from a session with no tenant set."""


class CrossTenantWrite(RuntimeError):
    """A flush tried to write a row of another tenant than the session's."""


def contains_nul(value: Any) -> bool:
    """Whether a JSON-like value holds a NUL character anywhere (keys included).

    PostgreSQL cannot store NUL in text or jsonb; servq refuses it on every backend so
    both answer the same.
    """
    # A stack, not recursion: a body nested thousands of levels deep must not overflow.
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            if "\x00" in item:
                return True
        elif isinstance(item, dict):
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
    return False


def utcnow() -> datetime:
    """The current instant, timezone-aware, in UTC."""
    return datetime.now(timezone.utc)


class Base(DeclarativeBase):
    """Declarative base of every servq table."""

    metadata = MetaData(naming_convention=NAMING)
    type_annotation_map = {
        datetime: UTCDateTime(),
        dict[str, Any]: JSONType,
        list[Any]: JSONType,
        uuid.UUID: Uuid(),
        str: String(),
    }


class TenantOwned:
    """Mixin of every tenant-owned table: ``PRIMARY KEY (tenant_id, id)``.

    Rows are stamped with the session's tenant on flush and every ORM statement on these
    models is filtered to it (see :mod:`core.db.tenancy`). ``tenant_id`` comes first in the
    key so the schema can be distributed by it (Citus).
    """

    tenant_id: Mapped[uuid.UUID] = mapped_column(Uuid(), primary_key=True, sort_order=-2)
    id: Mapped[uuid.UUID] = mapped_column(Uuid(), primary_key=True, default=uuid.uuid4, sort_order=-1)


def tenant_tables() -> list[str]:
    """Names of the tables that hold tenant-owned rows (for RLS, export and delete)."""
    return sorted(
        mapper.local_table.name
        for mapper in Base.registry.mappers
        if issubclass(mapper.class_, TenantOwned)
    )


def dialect_insert(session):
    """The ``insert`` construct of the session's database, which has ``ON CONFLICT``
    (``on_conflict_do_nothing`` / ``on_conflict_do_update``) on both backends servq runs
    on; :func:`servq.core.db.session.make_engine` refuses any other."""
    if session.get_bind().dialect.name == "postgresql":
        return postgresql.insert
    return sqlite.insert



