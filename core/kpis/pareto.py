"""Pareto views: what fails most, with shares and cumulative shares, and the titles of
standard items named ``"<standard>/<item>"`` (``GET /kpis/pareto/*``, the weekly report)."""

from __future__ import annotations

from typing import Any, Iterable, Mapping

from sqlalchemy import select

from servq.core.models import StandardVersion


def pareto(counts: Iterable[tuple[Any, int]]) -> tuple[int, list[dict[str, Any]]]:
    """``(total, entries)``: ``counts`` most first (ties by key, ``None`` last), each with
    its ``share`` and ``cumulative_share`` of the total, in percent."""
    ordered = sorted(((key, n) for key, n in counts if n),
                     key=lambda pair: (-pair[1], pair[0] is None, str(pair[0])))
    total = sum(n for _, n in ordered)
    running = 0
    entries = []
    for key, n in ordered:
        running += n
        entries.append({"key": key, "count": n, "share": 100.0 * n / total,
                        "cumulative_share": 100.0 * running / total})
    return total, entries


def titles_in(titles: Mapping[str, str] | None, lang: str) -> str | None:
    """A bilingual title in ``lang`` (English, then Chinese, when it lacks that one)."""
    if not titles:
        return None
    return titles.get(lang) or titles.get("en") or titles.get("zh")


def item_titles(session, keys: Iterable[str], lang: str) -> dict[str, str | None]:
    """``{"<standard>/<item>": title}`` in ``lang``: from the tenant's versions in force
    (the standards cache), and for an item they no longer have, from the newest stored
    version that has it (one query for all such items)."""
    from servq.core.standards.store import tenant_state

    in_force = tenant_state(session).in_force
    out: dict[str, str | None] = {}
    missing: dict[str, set[str]] = {}
    for key in set(keys):
        code, _, item = key.partition("/")
        entry = in_force.get(code)
        items = {i.get("code"): i for i in (entry.version.document.get("items") or ())} if entry else {}
        if item in items:
            out[key] = titles_in(items[item].get("title"), lang)
        else:
            missing.setdefault(code, set()).add(item)
    if missing:
        rows = session.execute(select(StandardVersion.code, StandardVersion.document)
                               .where(StandardVersion.code.in_(sorted(missing)))
                               .order_by(StandardVersion.code, StandardVersion.version.desc()))
        for code, document in rows:
            for item in (document or {}).get("items") or ():
                key = f"{code}/{item.get('code')}"
                if item.get("code") in missing[code] and key not in out:
                    out[key] = titles_in(item.get("title"), lang)
    for code, items in missing.items():
        for item in items:
            out.setdefault(f"{code}/{item}", None)
    return out
