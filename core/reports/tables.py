"""The weekly report's sections as plain tables, shared by the CSV, Excel and PDF renderers.

Each :class:`Section` has a stable ``key`` (``kpis``, ``top_failures`` …), a title in the
report's language, its columns (a stable machine ``key`` and a translated ``label``) and
its rows (values straight from the report dict: numbers stay numbers, ``None`` stays
``None``). Laying the same tables out three ways keeps the formats in agreement.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from servq.core.reports.weekly import labels

#: Sections in the order every format shows them.
SECTION_KEYS = ("summary", "kpis", "top_failures", "breaches", "open_actions", "pauses", "sites", "staff")


@dataclass(frozen=True)
class Column:
    key: str
    label: str
    #: ``False``: a key kept for machines (CSV, Excel: full ids, item keys), left out of
    #: the PDF, which shows the readable reference or title beside it.
    printed: bool = True


@dataclass(frozen=True)
class Section:
    key: str
    title: str
    columns: tuple[Column, ...]
    rows: tuple[tuple[Any, ...], ...]
    note: str | None = None  # e.g. "200 of 512 shown"


def sections(data: dict) -> list[Section]:
    """The report ``data`` (:func:`core.reports.weekly.build_weekly`) as tables."""
    t = labels(data["language"])
    return [_summary(data, t), _kpis(data, t), _failures(data, t), _breaches(data, t),
            _actions(data, t), _pauses(data, t), _ranking(data, t, "sites"), _ranking(data, t, "staff")]


def _columns(t: dict, *keys: str) -> tuple[Column, ...]:
    return tuple(Column(key, t.get(key, key)) for key in keys)


def _shown(t: dict, part: dict) -> str | None:
    if part["shown"] < part["total"]:
        return f"{t['shown']} {part['shown']} / {t['total']} {part['total']}"
    return None


def _summary(data: dict, t: dict) -> Section:
    period = data["period"]
    rows = (
        ("tenant", data["tenant"]["name"]),
        ("week", data["week"]),
        ("period", f"{period['start_date']} – {period['end_date']}"),
        ("timezone", data["timezone"]),
        ("as_of", data["as_of"]),
        ("language", data["language"]),
    )
    return Section("summary", t["summary"], _columns(t, "field", "value"), rows)


def _kpis(data: dict, t: dict) -> Section:
    weeks = data["weeks"]
    columns = (*_columns(t, "metric", "title", "unit"), *(Column(w, w) for w in weeks),
               *_columns(t, "change"), Column("average_previous", t["average"]))
    rows = tuple((row["metric"], row["title"], row["unit"], *(row["values"][w] for w in weeks),
                  row["change"], row["average_previous"]) for row in data["kpis"])
    note = f"{t['skipped']}: {', '.join(data['skipped_metrics'])}" if data["skipped_metrics"] else None
    return Section("kpis", t["kpis"], columns, rows, note)


def _failures(data: dict, t: dict) -> Section:
    part = data["top_failures"]
    columns = (Column("rank", t["rank"]), Column("item", t["item"], printed=False),
               *_columns(t, "title", "failures", "share", "cumulative_share"))
    rows = tuple((i["rank"], i["item"], i["title"], i["failures"], i["share"], i["cumulative_share"])
                 for i in part["items"])
    note = None if part["available"] else t["skipped"]
    return Section("top_failures", t["top_failures"], columns, rows, note)


def _breaches(data: dict, t: dict) -> Section:
    part = data["breaches"]
    columns = (Column("record", t["record"]), Column("kind", t["kind"], printed=False),
               Column("site", t["site"]), Column("item", t["item"], printed=False),
               *_columns(t, "title", "due_at", "stopped_at"),
               Column("record_id", t["record_id"], printed=False))
    rows = tuple((f"{i['kind_title']} #{i['reference']}", i["kind"], i["site"], f"{i['standard']}/{i['item']}",
                  i["title"], i["due_at"], i["stopped_at"], i["record_id"]) for i in part["items"])
    return Section("breaches", t["breaches"], columns, rows, _shown(t, part))


def _actions(data: dict, t: dict) -> Section:
    part = data["open_actions"]
    columns = (*_columns(t, "action", "title", "source", "status", "item", "created_at", "due_at",
                         "overdue", "age_days"), Column("action_id", t["action_id"], printed=False))
    rows = tuple((f"#{i['reference']}", i["title"], i["source"], i["status"], i["item"], i["created_at"],
                  i["due_at"], i["overdue"], i["age_days"], i["id"]) for i in part["items"])
    note = f"{t['total']} {part['total']}, {t['overdue']} {part['overdue']}"
    shown = _shown(t, part)
    return Section("open_actions", t["open_actions"], columns, rows, f"{note}; {shown}" if shown else note)


def _pauses(data: dict, t: dict) -> Section:
    part = data["pauses"]
    columns = _columns(t, "state", "reason", "pauses", "seconds", "cap_hits")
    rows = tuple((r["state"], r["reason"], r["pauses"], r["seconds"], r["cap_hits"]) for r in part["rows"])
    note = "{} {} s, {} {}".format(t["total"], part["total_seconds"], t["cap_hits"], part["cap_hits"])
    return Section("pauses", t["pauses"], columns, rows, note)


def _ranking(data: dict, t: dict, key: str) -> Section:
    part = data[key]
    columns = _columns(t, "position", "rank", "code", "name", "score", "pass_rate", "records")
    equal = part.get("all_equal")
    rows = tuple(("equal" if equal else position, 1 if equal else rank, e["code"], e["name"], e["score"],
                  e["pass_rate"], e["records"])
                 for position in ("best", "worst")
                 for rank, e in enumerate(part[position], start=1))
    note = None if part["available"] else t["skipped"]
    if part.get("all_equal"):
        note = t["all_equal"]
    return Section(key, t[key], columns, rows, note)
