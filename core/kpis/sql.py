"""The SQL pieces KPIs share, written once per dialect.

* :func:`period` turns a UTC timestamp column into the key of its tenant-local day
  (``2026-11-21``), ISO week (``2026-W47``) or month (``2026-11``). PostgreSQL converts
  with ``timezone()`` and ``to_char``; SQLite calls ``servq_period``, a function
  registered on every SQLite connection (:func:`register_sqlite_functions`) that does
  the same with :mod:`zoneinfo`, so both honour daylight saving time.
* :func:`percentile` is ``percentile_cont`` on PostgreSQL and the ``servq_percentile``
  aggregate on SQLite (linear interpolation, as ``percentile_cont``).
"""

from __future__ import annotations

import math
from datetime import datetime, timezone
from functools import lru_cache
from zoneinfo import ZoneInfo

from sqlalchemy import func, literal
from sqlalchemy.sql import ColumnElement

from servq.core.db.session import on_sqlite_connect

PERIODS = ("day", "week", "month")
_PG_FORMATS = {"day": "YYYY-MM-DD", "week": 'IYYY-"W"IW', "month": "YYYY-MM"}


def period(column, unit: str, tz: str, dialect: str) -> ColumnElement:
    """The tenant-local ``unit`` key of a timestamp ``column`` (see module docstring)."""
    if unit not in PERIODS:
        raise ValueError(f"unknown period {unit!r}")
    if dialect == "postgresql":
        return func.to_char(func.timezone(tz, column), _PG_FORMATS[unit])
    return func.servq_period(column, unit, tz)


def percentile(column, fraction: float, dialect: str) -> ColumnElement:
    """The ``fraction`` percentile (0.5: the median) of ``column`` over the group."""
    if dialect == "postgresql":
        return func.percentile_cont(literal(fraction)).within_group(column)
    return func.servq_percentile(column, fraction)


def period_key(instant: datetime, unit: str, tz: str) -> str:
    """:func:`period` in Python, for one instant (tests and report labels)."""
    local = instant.astimezone(_zone(tz))
    if unit == "day":
        return local.strftime("%Y-%m-%d")
    if unit == "month":
        return local.strftime("%Y-%m")
    year, week, _ = local.isocalendar()
    return f"{year}-W{week:02d}"


@lru_cache(maxsize=64)
def _zone(tz: str) -> ZoneInfo:
    return ZoneInfo(tz)


def _sqlite_period(value, unit, tz):
    if value is None:
        return None
    text = value if isinstance(value, str) else str(value)
    try:
        instant = datetime.fromisoformat(text)
    except ValueError:
        return None
    if instant.tzinfo is None:
        instant = instant.replace(tzinfo=timezone.utc)
    return period_key(instant, unit, tz)


class _Percentile:
    """SQLite aggregate: ``servq_percentile(x, fraction)`` like ``percentile_cont``."""

    def __init__(self):
        self.values: list[float] = []
        self.fraction = 0.5

    def step(self, value, fraction):
        if value is not None:
            self.values.append(float(value))
            self.fraction = float(fraction)

    def finalize(self):
        return interpolated_percentile(self.values, self.fraction)


def interpolated_percentile(values, fraction: float) -> float | None:
    """``percentile_cont(fraction)`` of ``values`` (``None`` when empty)."""
    if not values:
        return None
    ordered = sorted(values)
    rank = fraction * (len(ordered) - 1)
    low, high = math.floor(rank), math.ceil(rank)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


@on_sqlite_connect
def register_sqlite_functions(dbapi_connection) -> None:
    """Add ``servq_period`` and ``servq_percentile`` to a sqlite3 connection."""
    dbapi_connection.create_function("servq_period", 3, _sqlite_period, deterministic=True)
    dbapi_connection.create_aggregate("servq_percentile", 2, _Percentile)
