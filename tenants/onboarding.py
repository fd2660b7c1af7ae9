"""Onboarding: create or update a tenant from its manifest, in one transaction.

:func:`onboard` is idempotent (a second run of the same manifest changes nothing and
reports every object "unchanged") and all-or-nothing (any error rolls everything back).
It is also what ``servq serve --demo`` runs on the shipped ``tenants/examples/*.toml``.
"""

from __future__ import annotations

import uuid
from collections import Counter
from dataclasses import dataclass, field
from datetime import timedelta
from importlib import resources

from flask import Flask
from sqlalchemy import select

from servq.core.audit import apply_changes, audit, jsonable
from servq.core.auth.passwords import hash_password, verify_password
from servq.core.auth.tokens import issue_token, revoke_tokens_of
from servq.core.db.fast import bulk_gc
from servq.core.db.session import new_session
from servq.core.models import Membership, Site, Staff, Tenant, TenantPlugin, User
from servq.core.plugins.settings import PluginConfigError, UnknownPlugin, configure_plugin, tenant_plugin
from servq.core.plugins.app import get_plugins
from servq.tenants.manifest import ManifestError, error_lines, parse_manifest, validate_manifest

#: Kinds of objects a report counts, in the order they are created.
KINDS = ("tenant", "users", "memberships", "sites", "staff", "plugins", "calendar", "standards", "settings")

#: Password given to demo admins that have none, so ``serve --demo`` can print a login.
DEMO_PASSWORD = "servq-demo"


@dataclass
class OnboardingReport:
    """What :func:`onboard` did: per kind of object, how many were created, updated or
    left unchanged."""

    tenant_id: uuid.UUID
    slug: str
    counts: dict[str, Counter] = field(default_factory=lambda: {k: Counter() for k in KINDS})
    demo_loaded: bool = False

    def count(self, kind: str, outcome: str) -> None:
        self.counts[kind][outcome] += 1

    @property
    def tenant_created(self) -> bool:
        return self.counts["tenant"]["created"] == 1

    @property
    def changed(self) -> bool:
        """Whether anything was created or updated."""
        return any(c["created"] or c["updated"] for c in self.counts.values())

    @property
    def status(self) -> str:
        """``created``, ``updated`` or ``unchanged`` (the tenant as a whole)."""
        return "created" if self.tenant_created else ("updated" if self.changed else "unchanged")

    def as_dict(self) -> dict:
        """The report as JSON-ready data."""
        return {
            "tenant_id": str(self.tenant_id), "slug": self.slug, "status": self.status,
            "counts": {k: {o: c[o] for o in ("created", "updated", "unchanged")}
                       for k, c in self.counts.items()},
        }

    def summary(self) -> str:
        """Human-readable lines for the command line."""
        lines = [f"tenant {self.slug}: {self.status}"]
        for kind in KINDS[1:]:
            c = self.counts[kind]
            if sum(c.values()):
                lines.append(f"  {kind}: {c['created']} created, {c['updated']} updated, "
                             f"{c['unchanged']} unchanged")
        return "\n".join(lines)


def _upsert(session, report: OnboardingReport, kind: str, obj, values: dict, entity: str | None):
    """Create ``obj`` (when it is new, i.e. not yet in the session) or apply ``values``,
    count the outcome under ``kind`` and audit it as ``entity`` (``None``: global rows,
    which have no tenant audit trail)."""
    if obj not in session:
        for key, value in values.items():
            setattr(obj, key, value)
        session.add(obj)
        session.flush()
        report.count(kind, "created")
        if entity:
            audit(session, entity, obj.id, "created", None,
                  {k: [None, jsonable(v)] for k, v in values.items()})
        return obj
    changes = apply_changes(obj, values)
    if changes:
        session.flush()
        report.count(kind, "updated")
        if entity:
            audit(session, entity, obj.id, "changed", None, changes)
    else:
        report.count(kind, "unchanged")
    return obj


def onboard(app: Flask, manifest: dict, demo: bool = False) -> OnboardingReport:
    """Create or update the tenant a manifest declares; return what changed.

    Validates first (:class:`~tenants.manifest.ManifestError` naming the field path), then
    in one transaction writes the tenant, users and memberships, sites, staff and plugin
    settings, calls ``tenant_onboarded`` on the tenant's enabled plugins and, with
    ``demo``, the demo-data loaders of those plugins (only when the tenant is new, so a
    restarted demo does not load its data twice). Any error rolls back everything.
    """
    manifest = validate_manifest(manifest)
    plugins = get_plugins(app)
    with app.app_context(), new_session(app) as session:
        try:
            report = _write(session, plugins, manifest, demo)
            session.commit()
        except BaseException:
            session.rollback()
            raise
    return report


def _write(session, plugins, manifest: dict, demo: bool) -> OnboardingReport:
    tenant = session.scalar(select(Tenant).where(Tenant.slug == manifest["slug"]))
    fresh = tenant is None
    values = {k: manifest[k] for k in ("slug", "name", "industry", "timezone", "locale")}
    if fresh:
        if not any(a["role"] == "owner" for a in manifest["admins"]):
            raise ManifestError(["admins: A new tenant needs an admin with the role 'owner'."])
        tenant = Tenant(id=uuid.uuid4())
    report = OnboardingReport(tenant_id=tenant.id, slug=manifest["slug"])
    _upsert(session, report, "tenant", tenant, values, None)
    session.set_tenant(tenant.id)

    users = _admins(session, report, manifest["admins"])
    sites = _sites(session, report, manifest["sites"])
    _staff(session, report, manifest["staff"], sites, users)
    _plugins(session, report, plugins, manifest["plugins"])
    _calendar(session, report, manifest.get("calendar"))
    _standards(session, report, manifest.get("standards") or {})
    _settings(session, report, plugins, manifest.get("settings"))

    enabled = {pid for pid in session.scalars(
        select(TenantPlugin.plugin_id).where(TenantPlugin.active.is_(True))) if pid in plugins.ids()}
    try:
        plugins.hooks_for(enabled).tenant_onboarded(session=session, tenant=tenant, manifest=manifest)
    except PluginConfigError as exc:  # a plugin refuses its configuration: name the field
        raise ManifestError(error_lines(exc.messages, f"plugins.{exc.plugin_id}")) from None
    if demo and fresh:
        for plugin_id, loaders in plugins.contributions("register_demo_data"):
            if plugin_id.startswith("core.") or plugin_id in enabled:
                for loader in loaders:
                    loader(session, tenant)
        report.demo_loaded = True
    session.flush()
    return report


def _admins(session, report, admins: list[dict]) -> dict[str, User]:
    users: dict[str, User] = {}
    emails = [a["email"] for a in admins]
    existing = {u.email: u for u in session.scalars(select(User).where(User.email.in_(emails)))} if emails else {}
    members = {m.user_id: m for m in session.scalars(select(Membership))}
    for admin in admins:
        user = existing.get(admin["email"])
        values = {"email": admin["email"]}
        if "name" in admin:
            values["name"] = admin["name"]
        elif user is None:
            values["name"] = admin["email"].split("@")[0]
        user = _upsert(session, report, "users", user or User(id=uuid.uuid4()), values, None)
        users[user.email] = user
        membership = members.get(user.id)
        old_role = membership.role if membership is not None else None
        _upsert(session, report, "memberships", membership or Membership(id=uuid.uuid4()),
                {"user_id": user.id, "role": admin["role"]}, "memberships")
        if membership is not None and old_role != admin["role"]:
            revoke_tokens_of(session, membership.id)  # a role change ends old sessions
    return users


def _sites(session, report, sites: list[dict]) -> dict[str, Site]:
    by_code = {s.code: s for s in session.scalars(select(Site))}
    for site in sites:
        values = {k: site[k] for k in ("code", "name", "address") if k in site}
        obj = by_code.get(site["code"]) or Site(id=uuid.uuid4())
        by_code[site["code"]] = _upsert(session, report, "sites", obj, values, "sites")
    return by_code


def _staff(session, report, staff: list[dict], sites: dict[str, Site], users: dict[str, User]) -> None:
    by_code = {s.code: s for s in session.scalars(select(Staff))}
    wanted = {m["email"] for m in staff if "email" in m and m["email"] not in users}
    if wanted:
        users = dict(users)
        users.update({u.email: u for u in session.scalars(select(User).where(User.email.in_(wanted)))})
    errors = []
    for i, member in enumerate(staff):
        values = {k: member[k] for k in ("code", "name", "title") if k in member}
        if "site" in member:
            site = sites.get(member["site"])
            if site is None:
                errors.append(f"staff[{i}].site: Unknown site code {member['site']!r}.")
                continue
            values["site_id"] = site.id
        if "email" in member:
            user = users.get(member["email"])
            if user is None:
                errors.append(f"staff[{i}].email: No user with this email; list them under admins.")
                continue
            values["user_id"] = user.id
        if not errors:
            obj = by_code.get(member["code"]) or Staff(id=uuid.uuid4())
            _upsert(session, report, "staff", obj, values, "staff")
    if errors:
        raise ManifestError(errors)


def _plugins(session, report, plugins, wanted: dict[str, dict]) -> None:
    errors = []
    for plugin_id, configuration in wanted.items():
        row = tenant_plugin(session, plugin_id)
        before = (row.active, dict(row.configuration or {})) if row is not None else None
        try:
            row = configure_plugin(session, plugins, plugin_id, True, configuration)
        except UnknownPlugin as exc:
            errors.append(f"plugins.{plugin_id}: {exc}")
            continue
        except PluginConfigError as exc:
            errors.extend(error_lines(exc.messages, f"plugins.{plugin_id}"))
            continue
        if before is None:
            report.count("plugins", "created")
        elif before != (row.active, dict(row.configuration or {})):
            report.count("plugins", "updated")
        else:
            report.count("plugins", "unchanged")
    if errors:
        raise ManifestError(errors)


def _standards(session, report, tables: dict[str, dict]) -> None:
    """Apply ``[standards."<code>"]``: each table becomes a new version of the standard
    unless the version in force already says the same (so a second run stores nothing)."""
    if not tables:
        return
    from servq.core.standards import StandardInvalid, apply_manifest_standards

    try:
        outcomes = apply_manifest_standards(session, tables)
    except StandardInvalid as exc:
        raise ManifestError([f"{path}: {message}" for path, messages in exc.errors.items()
                             for message in messages]) from None
    for outcome in outcomes.values():
        report.count("standards", outcome)


def _calendar(session, report, calendar: dict | None) -> None:
    """Store the manifest's ``[calendar]`` (already the normal calendar document) as the
    tenant's calendar; no section leaves the stored one (or the default) as it is."""
    if calendar is None:
        return
    from servq.core.calendar.tenant import forget_calendar
    from servq.core.models import TenantCalendar

    row = session.scalar(select(TenantCalendar))
    _upsert(session, report, "calendar", row or TenantCalendar(id=uuid.uuid4()),
            {"document": dict(calendar)}, "calendars")
    forget_calendar(session)


def _settings(session, report, plugins, settings: dict | None) -> None:
    """Store the manifest's ``[settings]`` as the tenant's settings document (the whole of
    it: what the section leaves out goes back to its default), checked against the kinds
    of the plugins the tenant now has; no section leaves the stored settings as they are."""
    if settings is None:
        return
    from marshmallow import ValidationError

    from servq.core.models import TenantSettings
    from servq.core.settings import forget_settings, validate_settings

    enabled = {pid for pid in session.scalars(
        select(TenantPlugin.plugin_id).where(TenantPlugin.active.is_(True))) if pid in plugins.ids()}
    try:
        document = validate_settings(settings, plugins.kinds_for(enabled))
    except ValidationError as exc:
        raise ManifestError(error_lines(exc.messages, "settings")) from None
    row = session.scalar(select(TenantSettings))
    if row is None:
        _upsert(session, report, "settings", TenantSettings(id=uuid.uuid4()),
                {"document": document, "version": 1}, "tenant_settings")
    elif row.document != document:
        _upsert(session, report, "settings", row, {"document": document, "version": row.version + 1},
                "tenant_settings")
    else:
        report.count("settings", "unchanged")
    forget_settings(session)


# -- the demo of ``servq serve --demo`` ------------------------------------------------


def example_manifests() -> list[tuple[str, dict]]:
    """``(file name, validated manifest)`` of every ``tenants/examples/*.toml`` shipped in
    the installed package, by file name."""
    folder = resources.files("servq.tenants") / "examples"
    found = sorted((p for p in folder.iterdir() if p.name.endswith(".toml")), key=lambda p: p.name)
    out = []
    for path in found:
        try:
            out.append((path.name, parse_manifest(path.read_bytes())))
        except ManifestError as exc:
            raise ManifestError([f"{path.name}: {line}" for line in exc.errors]) from None
    return out


@dataclass
class DemoLogin:
    """How to log in to one demo tenant."""

    slug: str
    email: str
    password: str | None
    token: str
    report: OnboardingReport


def setup_demo(app: Flask, token_ttl: timedelta = timedelta(days=1)) -> list[DemoLogin]:
    """Onboard every example tenant with its demo data and make its first owner able to
    log in: a user without a password gets :data:`DEMO_PASSWORD`; a fresh token is issued.

    The password is reported only while it is still the demo password (one changed since
    is not known here, and is not reset).
    """
    logins = []
    # One argon2 hash of the demo password for every admin that has none: each hash costs
    # a fifth of a second on purpose, and the demo's twenty-odd admins share one password
    # anyway (a hash this call made needs no verifying either).
    demo_hash = None
    for _name, manifest in example_manifests():
        with bulk_gc():  # months of history per tenant: the collector rescanned the app's objects
            report = onboard(app, manifest, demo=True)
        owner = next((a for a in manifest["admins"] if a["role"] == "owner"), None)
        if owner is None:
            continue
        emails = [a["email"] for a in manifest["admins"]]
        with app.app_context(), new_session(app) as session:
            admins = {u.email: u for u in session.scalars(select(User).where(User.email.in_(emails)))}
            for user in admins.values():
                if user.password_hash is None:
                    demo_hash = demo_hash or hash_password(DEMO_PASSWORD)
                    user.password_hash = demo_hash
            user = admins[owner["email"]]
            known = user.password_hash == demo_hash or verify_password(user.password_hash, DEMO_PASSWORD)[0]
            session.set_tenant(report.tenant_id)
            membership = session.scalar(select(Membership).where(Membership.user_id == user.id))
            clear, _ = issue_token(session, membership, token_ttl, label="servq serve --demo")
            session.commit()
        logins.append(DemoLogin(manifest["slug"], owner["email"], DEMO_PASSWORD if known else None,
                                clear, report))
    return logins
