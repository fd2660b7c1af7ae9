"""What the hotel plugin works out when a record is written, before it is scored.

* **Pricing** (``hotel.checkout_inspection``): each damage line gets the list price in
  force the first time it is saved (``list_price``, ``currency``, ``priced_at``); a line
  that has one keeps it (a line sent back without it keeps the stored one, matched by
  position and code), so a later change of the price list never alters a charge.
  ``unit_price`` defaults to the list price; ``amount`` = quantity × unit price;
  ``priced_per_list`` says every unit price is the list price (false for a code not on
  the list or a price typed in).
* **Repairs**: every maintenance defect of a turnover (and every fault of an office
  service) without a repair opens exactly one ``hotel.repair`` whose id is written on
  the defect (``faults_dispatched`` then true).
* **First pass** (``hotel.room_turnover``): ``passed_first_time`` is false once the room
  failed an inspection (``failed_at``), true when inspected without one, null before.
* **Guest response**: ``accept`` and ``charge`` set ``guest_response`` accepted,
  ``dispute`` disputed (the damage KPI counts the disputed share).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import select

from servq import Staff, create_record, enabled_plugin_ids, get_plugins, utcnow
from servq.plugins.hotel.kinds import derive_defects
from servq.plugins.hotel.settings import plugin_configuration

TURNOVER = "hotel.room_turnover"
CHECKOUT = "hotel.checkout_inspection"
OFFICE = "hotel.office_service"
REPAIR = "hotel.repair"


def on_write(session, record, changes: dict[str, Any] | None) -> None:
    if record.kind == TURNOVER:
        data = dict(record.data or {})
        data["defects"] = _open_repairs(session, record, data.get("defects") or [], "area", "description")
        data = derive_defects(data)
        stamps = record.timestamps or {}
        data["passed_first_time"] = (False if stamps.get("failed_at")
                                     else True if record.status == "inspected" else None)
        data["self_check_allowed"] = _self_check(session, record)
        _store(record, data)
    elif record.kind == OFFICE:
        data = dict(record.data or {})
        faults = _open_repairs(session, record, data.get("faults") or [], None, "description")
        data["faults"] = faults
        data["faults_dispatched"] = all(f.get("repair_id") for f in faults) if faults else None
        _store(record, data)
    elif record.kind == CHECKOUT:
        data = dict(record.data or {})
        old = (changes or {}).get("data", [None])[0] or {}
        data = price(data, old.get("damages") or [], plugin_configuration(session), _latest(record))
        status = (changes or {}).get("status")
        if status and status[1] == "disputed":
            data["guest_response"] = "disputed"
        elif status and status[1] == "charged" and data.get("guest_response") is None:
            data["guest_response"] = "accepted"
        _store(record, data)


def _self_check(session, record) -> bool:
    """Whether the attendant's role (a word of their title) has inspection cadence 0."""
    if record.staff_id is None:
        return False
    title = (session.scalar(select(Staff.title).where(Staff.id == record.staff_id)) or "").lower()
    cadence = plugin_configuration(session).get("inspection_cadence") or {}
    return any(n == 0 and role.lower() in title for role, n in cadence.items())


def _store(record, data: dict[str, Any]) -> None:
    if data != record.data:
        record.data = data  # a new dict: the JSON column is written


def price(data: dict[str, Any], old_lines: list[dict[str, Any]], config: dict[str, Any],
          at: datetime) -> dict[str, Any]:
    """``data`` with every damage line priced at ``at`` (see the module's docstring)."""
    prices = config.get("damage_price_list") or {}
    now = at.isoformat()
    lines, total, per_list = [], 0.0, True
    for index, line in enumerate(data.get("damages") or []):
        line = dict(line)
        previous = old_lines[index] if index < len(old_lines) else {}
        if line.get("list_price") is None and previous.get("code") == line["code"] \
                and previous.get("list_price") is not None:
            line["list_price"], line["currency"] = previous["list_price"], previous.get("currency")
            line["priced_at"] = previous.get("priced_at")
        if line.get("list_price") is None and line["code"] in prices:
            entry = prices[line["code"]]
            line["list_price"], line["currency"], line["priced_at"] = entry["price"], entry["currency"], now
        if line.get("unit_price") is None:
            line["unit_price"] = line.get("list_price")
        unit = line.get("unit_price")
        line["amount"] = _number(unit * line.get("quantity", 1)) if unit is not None else None
        total += line["amount"] or 0
        per_list = per_list and line.get("list_price") is not None and unit == line["list_price"]
        lines.append(line)
    data["damages"] = lines
    data["damage_total"] = _number(total) if lines else 0
    data["priced_per_list"] = per_list if lines else None
    return data


def _number(value: float) -> float | int:
    return int(value) if float(value).is_integer() else round(value, 2)


def _latest(record) -> datetime:
    """When the defect was reported: the record's latest stamp (a demo replays the past)."""
    stamps = [datetime.fromisoformat(v) for v in (record.timestamps or {}).values() if isinstance(v, str)]
    return min(max([record.occurred_at, *stamps]), utcnow())


def _open_repairs(session, record, items: list[dict[str, Any]], area_key: str | None,
                  text_key: str) -> list[dict[str, Any]]:
    """``items`` with a repair opened for each maintenance item without one."""
    out, kinds = [], None
    for item in items:
        item = dict(item)
        needs = item.get("kind", "maintenance") == "maintenance" and not item.get("repair_id")
        if needs:
            if kinds is None:
                kinds = get_plugins().kinds_for(enabled_plugin_ids(session))
            area = item.get(area_key) if area_key else None
            where = record.data.get("room") or "?"
            repair = create_record(session, kinds, {
                "kind": REPAIR, "site_id": record.site_id, "occurred_at": _latest(record),
                "data": {"room_or_area": f"{where} {area}" if area else where,
                         "facility": item.get("facility", "other"),
                         "description": item.get(text_key) or "Defect found while cleaning",
                         "source_record_id": str(record.id)}}, None)
            item["repair_id"] = str(repair.id)
        out.append(item)
    return out
