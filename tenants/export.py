"""Export every row a tenant owns as one JSON document (data portability, offboarding).

The document is ``{"format": "servq-export", "version": 1, "exported_at", "tenant",
"users", "tables"}``: the tenant's own row, the users who are its members (without
password hashes) and, for every tenant-owned table, all of the tenant's rows. Secrets
are left out: token hashes, anything named like a hash or a secret, and the content of
earlier exports (an export would otherwise contain every export before it).
"""

from __future__ import annotations

import json
import uuid
from datetime import date, datetime, time
from decimal import Decimal
from typing import Any

from sqlalchemy import LargeBinary, Table, select

from core.db import Base, tenant_tables, utcnow

FORMAT = "servq-export"
VERSION = 1

#: Columns never exported, by table, on top of :func:`is_secret_column`.
EXCLUDED_COLUMNS: dict[str, frozenset[str]] = {
    "users": frozenset({"password_hash"}),
    "tokens": frozenset({"token_hash"}),
    "tenant_exports": frozenset({"content"}),
}


def is_secret_column(table: str, column: str) -> bool:
    """Whether ``table.column`` holds a secret (a hash, a signing secret) or is excluded."""
    if column in EXCLUDED_COLUMNS.get(table, ()):
        return True
    return column.endswith("_hash") or "secret" in column


def jsonable(value: Any) -> Any:
    """A JSON-safe copy of a column value (ids and instants become strings)."""
    if isinstance(value, (uuid.UUID, Decimal)):
        return str(value)
    if isinstance(value, (datetime, date, time)):
        return value.isoformat()
    return value


def _columns(table: Table) -> list:
    # Binary columns are left out: JSON has no bytes, and the only binary column
    # (an export's content) is excluded anyway.
    return [
        col for col in table.columns
        if not is_secret_column(table.name, col.name)
        and not isinstance(col.type, LargeBinary)
    ]


def _rows(session, table: Table, where) -> list[dict]:
    columns = _columns(table)
    order = [c for c in table.primary_key.columns]
    result = session.execute(select(*columns).where(where).order_by(*order))
    return [{key: jsonable(value) for key, value in row.items()} for row in result.mappings()]


def owned_tables() -> list[Table]:
    """Every tenant-owned table, parents before children."""
    names = set(tenant_tables())
    return [t for t in Base.metadata.sorted_tables if t.name in names]


def export_tenant(session) -> dict:
    """All data of the session's tenant as a JSON-safe dict.

    One SELECT per table. The statements are written against tables, which the ORM
    filter does not see, so each one names the tenant itself; on PostgreSQL row-level
    security limits them to the same tenant a second time.
    """
    tenant_id = session.tenant_id
    if tenant_id is None:
        raise ValueError("export_tenant needs a session scoped to a tenant")
    meta = Base.metadata.tables
    tenants, users, memberships = meta["tenants"], meta["users"], meta["memberships"]
    tenant_rows = _rows(session, tenants, tenants.c.id == tenant_id)
    if not tenant_rows:
        raise LookupError(f"tenant {tenant_id} does not exist")
    member_ids = select(memberships.c.user_id).where(memberships.c.tenant_id == tenant_id)
    return {
        "format": FORMAT,
        "version": VERSION,
        "exported_at": utcnow().isoformat(),
        "tenant": tenant_rows[0],
        "users": _rows(session, users, users.c.id.in_(member_ids)),
        "tables": {
            table.name: _rows(session, table, table.c.tenant_id == tenant_id)
            for table in owned_tables()
        },
    }


def row_count(document: dict) -> int:
    """Number of tenant-owned rows in an export document."""
    return sum(len(rows) for rows in document["tables"].values())


def export_json(session) -> bytes:
    """:func:`export_tenant` serialised as UTF-8 JSON."""
    return dumps(export_tenant(session))


def dumps(document: dict) -> bytes:
    """Serialise an export document (compact, key order kept, non-ASCII as is)."""
    return json.dumps(document, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
