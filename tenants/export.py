"""Export every row a tenant owns as one JSON document (data portability, offboarding).

The document is ``{"format": "servq-export", "version": 1, "exported_at", "tenant",
"users", "tables"}``: the tenant's own row, the users who are its members (without
password hashes) and, for every tenant-owned table, all of the tenant's rows. Secrets
are left out: token hashes, anything named like a hash or a secret, and the content of
earlier exports (an export would otherwise contain every export before it).

Text that is not Unicode (a lone surrogate, which the API now refuses but SQLite stored
before) cannot be written as UTF-8: :func:`dumps` replaces each such code point by
U+FFFD and lists where in ``"replaced"``, so one bad value never blocks a tenant's
export and offboarding.
"""

from __future__ import annotations

import json
import re
import uuid
from datetime import date, datetime, time
from decimal import Decimal
from typing import Any

from sqlalchemy import LargeBinary, Table, select

from servq.core.db import Base, tenant_tables, utcnow

_SURROGATE = re.compile("[\ud800-\udfff]")
REPLACED_REASON = "lone surrogate replaced by U+FFFD"

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
    """Serialise an export document (compact, key order kept, non-ASCII as is).

    A lone surrogate stored by an earlier version is replaced by U+FFFD, and the value
    named in ``document["replaced"]`` (``{table, id, column, reason}``; the document is
    changed in place): the export of the rest goes on.
    """
    text = json.dumps(document, ensure_ascii=False, separators=(",", ":"))
    try:
        return text.encode("utf-8")
    except UnicodeEncodeError:
        pass
    document["replaced"] = _replace_surrogates(document)
    return json.dumps(document, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


def _replace_surrogates(document: dict) -> list[dict]:
    sections = [("tenants", [document["tenant"]]), ("users", document["users"]),
                *document["tables"].items()]
    replaced = []
    for table, rows in sections:
        for row in rows:
            for column, value in row.items():
                clean = _clean(value)
                if clean != value:
                    row[column] = clean
                    replaced.append({"table": table, "id": row.get("id"), "column": column,
                                     "reason": REPLACED_REASON})
    return replaced


def _clean(value: Any) -> Any:
    if isinstance(value, str):
        return _SURROGATE.sub("\ufffd", value)
    if isinstance(value, dict):
        return {_clean(k): _clean(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_clean(v) for v in value]
    return value
