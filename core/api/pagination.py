"""Page-number pagination with an ``X-Pagination`` header.

Counting every row of a large tenant on each page would make page one of a million
records slow, so the total is exact up to ``COUNT_LIMIT`` rows and reported as a lower
bound beyond that (``total_exact: false``). The cap bounds what the count costs a large
tenant's every page: counting 10,000 rows took longer than the page itself
(``bench/records_list.py``), 1,000 a tenth of that.
"""

from __future__ import annotations

import json

from marshmallow import Schema, ValidationError, validates_schema
from sqlalchemy import func, select

from servq.core.api.args import Int

COUNT_LIMIT = 1_000
DEFAULT_PAGE_SIZE = 50


class PageArgs(Schema):
    """``page`` (from 1) and ``page_size`` (1 to 500) of a list."""

    page = Int(min=1, max=1_000_000, load_default=1)
    page_size = Int(min=1, max=500, load_default=DEFAULT_PAGE_SIZE)

    @validates_schema
    def _not_too_deep(self, data, **kwargs):
        if data.get("page", 1) * data.get("page_size", DEFAULT_PAGE_SIZE) > 10_000_000:
            raise ValidationError("page × page_size may not exceed 10,000,000; narrow the filters.")


PAGINATION_HEADER_DOC = {
    "X-Pagination": {
        "description": "JSON: page, page_size, total, total_exact, total_pages, "
                       "first_page, last_page, previous_page, next_page. The total is "
                       f"exact up to {COUNT_LIMIT:,} rows; beyond, total_exact is false, "
                       "total a lower bound and total_pages and last_page null.",
        "schema": {"type": "string"},
    }
}


def paginate(session, stmt, args: dict, headers: dict) -> list:
    """Run ``stmt`` (an ordered SELECT of entities) for the requested page.

    Adds ``X-Pagination`` to ``headers`` and returns the page's objects.
    """
    page, size = args.get("page", 1), args.get("page_size", DEFAULT_PAGE_SIZE)
    rows = list(session.scalars(stmt.limit(size + 1).offset((page - 1) * size)))
    has_next = len(rows) > size
    rows = rows[:size]
    capped = stmt.order_by(None).limit(COUNT_LIMIT + 1).subquery()
    total = session.scalar(select(func.count()).select_from(capped))
    exact = total <= COUNT_LIMIT
    total = min(total, COUNT_LIMIT)
    if not exact:
        total = max(total, (page - 1) * size + len(rows))
    total_pages = max(1, -(-total // size))
    meta = {
        "page": page,
        "page_size": size,
        "total": total,
        "total_exact": exact,
        "total_pages": total_pages if exact else None,
        "first_page": 1,
        "last_page": total_pages if exact else None,
        "previous_page": page - 1 if page > 1 else None,
        "next_page": page + 1 if has_next else None,
    }
    headers["X-Pagination"] = json.dumps(meta)
    return rows
