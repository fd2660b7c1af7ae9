"""The baseline of bench/records_http.py: a bare Flask + SQLAlchemy app that inserts the
same record row servq inserts, with no auth, validation, tenancy, audit or plugins.

It is a fair floor, not a toy: a pooled engine (``pool_size=10``, as servq's), one real
transaction with a COMMIT per request, the same table and database, and it is served
by the same WSGI server with the same settings as ``servq serve`` (see records_http.py).
"""

from __future__ import annotations

import json
import os
import uuid
from datetime import datetime, timezone

from flask import Flask, request
from sqlalchemy import create_engine, text

app = Flask(__name__)
engine = create_engine(os.environ["DATABASE_URL"], pool_size=10)
TENANT = uuid.UUID(os.environ["BENCH_TENANT_ID"])
USER = uuid.UUID(os.environ["BENCH_USER_ID"]) if os.environ.get("BENCH_USER_ID") else None
INSERT = text(
    "INSERT INTO records (tenant_id, id, kind, occurred_at, status, data, created_by, created_at, updated_at) "
    "VALUES (:tenant_id, :id, :kind, :occurred_at, 'open', CAST(:data AS jsonb), :created_by, :now, :now)"
)


@app.post("/records")
def create():
    body = request.get_json()
    now = datetime.now(timezone.utc)
    row = {"tenant_id": TENANT, "id": uuid.uuid4(), "kind": body["kind"],
           "occurred_at": datetime.fromisoformat(body["occurred_at"]),
           "data": json.dumps(body["data"]), "created_by": USER, "now": now}
    with engine.begin() as conn:
        conn.execute(INSERT, row)
    return {"id": str(row["id"]), "kind": row["kind"]}, 201


@app.get("/health")
def health():
    return {"ok": True}
