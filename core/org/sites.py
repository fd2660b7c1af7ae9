"""Sites: the places where service is delivered (hotels, estates, depots, service centres)."""

from __future__ import annotations

import uuid

from sqlalchemy import or_, select

from servq.core.audit import apply_changes, audit
from servq.core.db.state import TRANSACTION, Slot
from servq.core.models import Site
from servq.core.org.errors import OrgConflict

#: ``(tenant id, model name, id)`` of the sites and staff this transaction has found to
#: exist (the record pipeline checks a record's site and staff once per transaction, not
#: at every record); deleting a site or a member of staff drops it.
FOUND: Slot[set] = Slot("servq.org.found", TRANSACTION, __name__)


def text_search(text: str, *columns):
    """A clause: one of ``columns`` contains ``text``, case-insensitively, with LIKE's
    wildcards in ``text`` taken literally (the ``q`` filter of a list): ``%``, ``_`` and
    the escape character match themselves (SQLAlchemy's ``icontains(..., autoescape=True)``),
    never "anything"."""
    return or_(*(column.icontains(text, autoescape=True) for column in columns))


def sites_statement(q: str | None = None, active: bool | None = None):
    """SELECT of the tenant's sites by code: whose code or name contains ``q``, active or not."""
    stmt = select(Site).order_by(Site.code)
    if q:
        stmt = stmt.where(text_search(q, Site.code, Site.name))
    if active is not None:
        stmt = stmt.where(Site.active.is_(active))
    return stmt


def find_site(session, site_id: uuid.UUID) -> Site | None:
    """The tenant's site, or ``None``."""
    return session.scalar(select(Site).where(Site.id == site_id))


def _code_taken(session, code: str) -> None:
    if session.scalar(select(Site.id).where(Site.code == code)):
        raise OrgConflict(f"A site with code {code!r} exists.")


def create_site(session, values: dict, actor_id: uuid.UUID | None) -> Site:
    """Add a site (``code``, ``name``, ``address``, ``active``), audited.

    :raises OrgConflict: a site has this code.
    """
    _code_taken(session, values["code"])
    site = Site(**values)
    session.add(site)
    session.flush()
    audit(session, "sites", site.id, "created", actor_id, {k: [None, v] for k, v in values.items()})
    return site


def change_site(session, site: Site, values: dict, actor_id: uuid.UUID | None) -> dict:
    """Change a site; audit what changed and return it.

    :raises OrgConflict: the new code is another site's.
    """
    if "code" in values and values["code"] != site.code:
        _code_taken(session, values["code"])
    changes = apply_changes(site, values)
    if changes:
        audit(session, "sites", site.id, "changed", actor_id, changes)
    return changes


def delete_site(session, site: Site, actor_id: uuid.UUID | None) -> None:
    """Delete a site, audited (the database refuses it while anything refers to it)."""
    audit(session, "sites", site.id, "deleted", actor_id)
    session.delete(site)
    session.state.pop(FOUND)
