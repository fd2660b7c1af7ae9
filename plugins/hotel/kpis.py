"""The hotel plugin's KPIs, each one SQL query over the period (records placed by
``occurred_at``; groupings day/week/month, site, staff = the record's staff member).

* ``hotel.inspection_pass_first_time``: percent of inspected turnovers that passed their
  first inspection (``passed_first_time``); ``by`` = ``clean_type``, ``inspector`` or none.
* ``hotel.reclean_rate``: its complement: percent of judged turnovers sent back.
* ``hotel.refill_attainment``: percent of meetings whose largest refill gap is within
  ``interval`` minutes (default 15).
* ``hotel.office_ready_attainment``: percent of office services done by the ready-by time
  (their ``ready_by_0830`` clock met, among decided ones).
* ``hotel.damage_charges``: ``{count, charged, waived, disputed_share, amount}`` of the
  period's check-outs with damage.
* ``hotel.dish_rejection_rate``: percent of dish checks rejected at the pass.
* ``hotel.mystery_open_gap``: mean score of open inspections minus mystery ones (the
  etiquette, restaurant and SPA standards): how much better staff do when watched.
"""

from __future__ import annotations

from sqlalchemy import Float, and_, case, cast, func, literal_column, or_, select

from servq import Clock, Evaluation, KpiError, KpiQuery, Metric, Record, key_text, utcnow

GROUPINGS = frozenset({"day", "week", "month", "site", "staff"})
NONE = "none"


def _t(en: str, zh: str) -> dict[str, str]:
    return {"en": en, "zh": zh}


def _share(q: KpiQuery, kind: str, hit, judged, by_column=None):
    keys = q.keys(time=Record.occurred_at, site=Record.site_id, staff=Record.staff_id)
    by = [by_column.label("by")] if by_column is not None else []
    stmt = (select(*keys, *by, func.sum(case((hit, 1), else_=0)).label("hit"), func.count().label("n"))
            .where(Record.kind == kind, Record.deleted_at.is_(None), judged, q.in_period(Record.occurred_at),
                   *q.record_filters())
            .group_by(*keys, *by))
    width = len(q.group_by)
    out: dict[tuple, object] = {}
    for row in q.session.execute(stmt):
        key = tuple(key_text(v) for v in row[:width])
        value = round(100.0 * row.hit / row.n, 2) if row.n else None
        if by_column is None:
            out[key] = value
        else:
            out.setdefault(key, {})[key_text(row.by)] = value
    if not q.group_by:
        out.setdefault((), None if by_column is None else {})
    return out


def _turnover_by(q: KpiQuery):
    by = q.params.get("by") or NONE
    columns = {NONE: None, "clean_type": Record.data["clean_type"].as_string(),
               "inspector": Record.data["inspector_id"].as_string()}
    if by not in columns:
        raise KpiError("Unknown grouping.", {"by": [f"Use one of: {', '.join(columns)}."]})
    return columns[by]


def first_pass(q: KpiQuery):
    value = Record.data["passed_first_time"].as_boolean()
    return _share(q, "hotel.room_turnover", value.is_(True), value.isnot(None), _turnover_by(q))


def reclean(q: KpiQuery):
    value = Record.data["passed_first_time"].as_boolean()
    return _share(q, "hotel.room_turnover", value.is_(False), value.isnot(None), _turnover_by(q))


def refill(q: KpiQuery):
    try:
        interval = float(q.params.get("interval") or 15)
    except ValueError:
        raise KpiError("Bad parameter.", {"interval": ["A number of minutes."]}) from None
    gap = Record.data["max_refill_gap_minutes"].as_float()
    return _share(q, "hotel.meeting_service", gap <= interval, gap.isnot(None))


def office_ready(q: KpiQuery):
    now = q.now or utcnow()
    late = or_(Clock.state == "breached", and_(Clock.state == "running", Clock.due_at <= now))
    keys = q.keys(time=Record.occurred_at, site=Record.site_id, staff=Record.staff_id)
    stmt = (select(*keys, func.sum(case((Clock.state == "met", 1), else_=0)).label("hit"),
                   func.sum(case((or_(Clock.state == "met", late), 1), else_=0)).label("n"))
            .select_from(Clock)
            .join(Record, and_(Record.tenant_id == Clock.tenant_id, Record.id == Clock.record_id))
            .where(Record.kind == "hotel.office_service", Clock.item_code == "ready_by_0830",
                   q.in_period(Record.occurred_at), *q.record_filters())
            .group_by(*keys))
    width = len(q.group_by)
    out = {tuple(key_text(v) for v in row[:width]): (round(100.0 * row.hit / row.n, 2) if row.n else None)
           for row in q.session.execute(stmt)}
    if not q.group_by:
        out.setdefault((), None)
    return out


def damage_charges(q: KpiQuery):
    keys = q.keys(time=Record.occurred_at, site=Record.site_id, staff=Record.staff_id)
    total = cast(Record.data["damage_total"].as_float(), Float)
    disputed = or_(Record.data["guest_response"].as_string() == "disputed",
                   Record.timestamps["disputed_at"].as_string().isnot(None))
    stmt = (select(*keys, func.count().label("n"),
                   func.sum(case((Record.status == "charged", 1), else_=0)).label("charged"),
                   func.sum(case((Record.status == "waived", 1), else_=0)).label("waived"),
                   func.sum(case((disputed, 1), else_=0)).label("disputed"),
                   func.sum(case((Record.status == "charged", total), else_=0)).label("amount"))
            .where(Record.kind == "hotel.checkout_inspection", Record.deleted_at.is_(None),
                   total > 0, q.in_period(Record.occurred_at), *q.record_filters())
            .group_by(*keys))
    width = len(q.group_by)
    out = {}
    for row in q.session.execute(stmt):
        out[tuple(key_text(v) for v in row[:width])] = {
            "count": row.n, "charged": row.charged or 0, "waived": row.waived or 0,
            "disputed_share": round(100.0 * (row.disputed or 0) / row.n, 2) if row.n else None,
            "amount": round(float(row.amount or 0), 2)}
    if not q.group_by:
        out.setdefault((), {"count": 0, "charged": 0, "waived": 0, "disputed_share": None, "amount": 0})
    return out


def mystery_open_gap(q: KpiQuery):
    """Mean percent of open inspections minus that of mystery ones, against the hotel's
    inspection standards (``standard`` param narrows to one): performance when watched."""
    standard = q.params.get("standard")
    if standard is not None and not standard.startswith("hotel."):
        raise KpiError("Bad parameter.", {"standard": ["One of the hotel's inspection standards."]})
    keys = q.keys(time=Record.occurred_at, site=Record.site_id, staff=Record.staff_id)
    visibility = Record.data["visibility"].as_string()
    codes = [standard] if standard else list(INSPECTION_STANDARDS)
    stmt = (select(*keys, func.avg(case((visibility == "open", Evaluation.percent))).label("open"),
                   func.avg(case((visibility == "mystery", Evaluation.percent))).label("mystery"))
            .select_from(Evaluation)
            .join(Record, and_(Record.tenant_id == Evaluation.tenant_id, Record.id == Evaluation.record_id))
            .where(Record.kind == "inspection", Record.deleted_at.is_(None), Evaluation.standard_code.in_(codes),
                   q.in_period(Record.occurred_at), *q.record_filters())
            .group_by(*keys))
    width = len(q.group_by)
    out = {tuple(key_text(v) for v in row[:width]):
           (round(float(row.open) - float(row.mystery), 2) if row.open is not None and row.mystery is not None
            else None)
           for row in q.session.execute(stmt)}
    if not q.group_by:
        out.setdefault((), None)
    return out


INSPECTION_STANDARDS = ("hotel.service_etiquette", "hotel.restaurant_service", "hotel.spa_service")


def dish_rejection(q: KpiQuery):
    return _share(q, "hotel.dish_check", Record.data["result"].as_string() == "reject", literal_column("1") == 1)


BY = {"by": "clean_type, inspector or none (default)"}
METRICS = [
    Metric("hotel.inspection_pass_first_time", _t("Rooms passed at first inspection", "查房一次合格率"),
           "percent", GROUPINGS, first_pass, params=BY, report=True),
    Metric("hotel.reclean_rate", _t("Rooms sent back to re-clean", "返工率"), "percent", GROUPINGS, reclean,
           params=BY, better="lower"),
    Metric("hotel.refill_attainment", _t("Meetings refilled every 15 minutes", "会议15分钟添茶达标率"),
           "percent", GROUPINGS, refill, params={"interval": "minutes (default 15)"}, report=True),
    Metric("hotel.office_ready_attainment", _t("Offices ready by 08:30", "办公室8:30前完成率"), "percent",
           GROUPINGS, office_ready, report=True),
    Metric("hotel.damage_charges", _t("Damage charges", "损坏赔偿"), "count", GROUPINGS, damage_charges,
           better=None),
    Metric("hotel.mystery_open_gap", _t("Open minus mystery inspection score", "明查与暗查得分差"), "points",
           GROUPINGS, mystery_open_gap, params={"standard": "one hotel inspection standard (default all three)"},
           better="lower"),
    Metric("hotel.dish_rejection_rate", _t("Dishes rejected at the pass", "菜点退回率"), "percent", GROUPINGS,
           dish_rejection, better="lower", report=True),
]
