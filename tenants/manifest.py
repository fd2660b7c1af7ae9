"""The tenant manifest: a TOML file that declares a tenant, validated by marshmallow.

A manifest declares the tenant (slug, name, industry, time zone, locale), the plugins it
enables (a list of ids, or ``[plugins.<id>]`` tables holding each plugin's
configuration), its admins, sites and staff, and optionally its business calendar, its
standards and its settings (``[settings]``: its own values of core's defaults,
docs/settings.md). Unknown keys are errors, and every error
names the offending field path, e.g. ``sites[1].code: Missing data for required field.``

New sections (``[calendar]``, ``[standards."<code>"]``, …) are added as fields of
:class:`ManifestSchema`; :func:`validate_manifest` and the error paths need no change.
"""

from __future__ import annotations

import re
import tomllib
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from marshmallow import (Schema, ValidationError, fields, pre_load, validate, validates,
                         validates_schema)

from servq.core.auth.permissions import ROLES
from servq.core.calendar.tenant import CalendarDocumentField

SLUG_RE = re.compile(r"^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$")
CODE_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$")
LOCALE_RE = re.compile(r"^(en|zh)([-_][A-Za-z]{2,4})?$")
CODE_ERROR = "Not a valid code (letters, digits, '_', '.' and '-', starting with a letter or digit; at most 63)."
PLUGIN_ID_RE = re.compile(r"^[a-z][a-z0-9_]{0,62}$")
PLUGIN_ID_ERROR = "Not a plugin id (lower-case letters, digits and '_', starting with a letter)."


class _Section(Schema):
    """A manifest table: an unknown key's error lists the keys that are allowed there."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.error_messages = {**self.error_messages,
                               "unknown": "Unknown field. Allowed: " + ", ".join(self.fields) + "."}


class ManifestError(ValueError):
    """A manifest is invalid; ``errors`` lists ``"<field path>: <message>"`` lines."""

    def __init__(self, errors: list[str]):
        self.errors = list(errors)
        super().__init__("; ".join(self.errors))


def error_lines(messages: Any, prefix: str = "") -> list[str]:
    """Flatten marshmallow's nested error dict into ``"path: message"`` lines.

    List items become ``name[i]`` and nested fields ``name.field``; ``_schema`` errors
    belong to the enclosing path.
    """
    if isinstance(messages, dict):
        lines = []
        for key, value in messages.items():
            if key == "_schema":
                path = prefix
            elif isinstance(key, int):
                path = f"{prefix}[{key}]"
            else:
                path = f"{prefix}.{key}" if prefix else str(key)
            lines.extend(error_lines(value, path))
        return lines
    if isinstance(messages, (list, tuple)):
        if all(isinstance(m, str) for m in messages):
            return [f"{prefix or 'manifest'}: {m}" for m in messages]
        lines = []
        for m in messages:
            lines.extend(error_lines(m, prefix))
        return lines
    return [f"{prefix or 'manifest'}: {messages}"]


def _timezone(value: str) -> None:
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValidationError(f"Unknown time zone {value!r} (use an IANA name such as 'Asia/Shanghai').")


class PluginsField(fields.Field):
    """``plugins = ["hotel"]`` or ``[plugins.hotel]`` tables; loads ``{id: configuration}``."""

    def _deserialize(self, value, attr, data, **kwargs) -> dict[str, dict]:
        if isinstance(value, list):
            out: dict[str, dict] = {}
            for i, item in enumerate(value):
                if not isinstance(item, str) or not PLUGIN_ID_RE.match(item):
                    raise ValidationError({i: [PLUGIN_ID_ERROR]})
                if item in out:
                    raise ValidationError({i: [f"Plugin {item!r} is listed twice."]})
                out[item] = {}
            return out
        if isinstance(value, dict):
            errors = {}
            for key, config in value.items():
                if not PLUGIN_ID_RE.match(str(key)):
                    errors[key] = [PLUGIN_ID_ERROR]
                elif not isinstance(config, dict):
                    errors[key] = ["A plugin's configuration must be a table."]
            if errors:
                raise ValidationError(errors)
            return {key: dict(config) for key, config in value.items()}
        raise ValidationError("A list of plugin ids or a table of [plugins.<id>] sections.")


STANDARD_CODE_RE = re.compile(r"^[a-z0-9][a-z0-9_.\-]{0,99}$")


class StandardsField(fields.Field):
    """``[standards."<code>"]`` tables: ``{code: table}``.

    For a shipped standard the table is the tenant's override document (see
    ``docs/standards.md``), for any other code the whole document of a standard of the
    tenant's own; an optional ``note`` is stored with the version. The tables are
    validated against the standards when the manifest is onboarded.
    """

    def _deserialize(self, value, attr, data, **kwargs) -> dict[str, dict]:
        if not isinstance(value, dict):
            raise ValidationError('A table of [standards."<code>"] sections.')
        errors = {}
        for code, table in value.items():
            if not STANDARD_CODE_RE.match(str(code)):
                errors[code] = ["Not a standard code (lower-case letters, digits, '.', '_', '-')."]
            elif not isinstance(table, dict):
                errors[code] = ["A standard's overrides (or document) must be a table."]
        if errors:
            raise ValidationError(errors)
        return {code: dict(table) for code, table in value.items()}


class AdminSchema(_Section):
    """A user who administers the tenant (created if new) and their role."""

    email = fields.Email(required=True)
    role = fields.String(required=True, validate=validate.OneOf(ROLES))
    name = fields.String(validate=validate.Length(max=200))


class SiteSchema(_Section):
    """A site, matched by ``code``."""

    code = fields.String(required=True, validate=validate.Regexp(CODE_RE, error=CODE_ERROR))
    name = fields.String(required=True, validate=validate.Length(min=1, max=200))
    address = fields.String(validate=validate.Length(max=500))


class StaffSchema(_Section):
    """A member of staff, matched by ``code``; ``site`` is a site code."""

    code = fields.String(required=True, validate=validate.Regexp(CODE_RE, error=CODE_ERROR))
    name = fields.String(required=True, validate=validate.Length(min=1, max=200))
    site = fields.String(validate=validate.Regexp(CODE_RE, error="Not a valid site code (a site's code)."))
    title = fields.String(validate=validate.Length(max=200))
    email = fields.Email(metadata={"description": "Links the staff member to this user"})


def _unique(items: list[dict], key: str, section: str) -> dict:
    errors: dict = {}
    seen: set = set()
    for i, item in enumerate(items):
        value = item[key].lower() if key == "email" else item[key]
        if value in seen:
            errors.setdefault(section, {})[i] = {key: [f"Duplicate {key} {item[key]!r}."]}
        seen.add(value)
    return errors


class ManifestSchema(_Section):
    """A whole manifest. Unknown keys are refused (marshmallow's default, ``RAISE``)."""

    slug = fields.String(required=True, validate=validate.Regexp(
        SLUG_RE, error="Lowercase letters, digits and '-' only (at most 63)."))
    name = fields.String(required=True, validate=validate.Length(min=1, max=200))
    industry = fields.String(load_default="general", validate=validate.Regexp(
        PLUGIN_ID_RE, error="Lowercase letters, digits and '_' only."))
    timezone = fields.String(load_default="UTC", validate=_timezone)
    locale = fields.String(load_default="en", validate=validate.Regexp(
        LOCALE_RE, error="Use 'en' or 'zh' (optionally with a region, e.g. 'zh-CN')."))
    plugins = PluginsField(load_default=dict)
    admins = fields.List(fields.Nested(AdminSchema), load_default=list)
    sites = fields.List(fields.Nested(SiteSchema), load_default=list)
    staff = fields.List(fields.Nested(StaffSchema), load_default=list)
    # The business calendar (core/calendar/schema.py); its timezone defaults to the
    # tenant's. Absent: the tenant keeps its calendar (or the default one).
    calendar = CalendarDocumentField(load_default=None)
    # Overrides of shipped standards and standards of the tenant's own (docs/standards.md).
    standards = StandardsField(load_default=dict)
    # The tenant's own values of core's defaults (docs/settings.md), checked at onboarding
    # against the kinds of its plugins. Absent: the stored settings stay as they are.
    settings = fields.Dict(load_default=None)

    @pre_load
    def _calendar_timezone(self, data, **kwargs):
        if isinstance(data, dict) and isinstance(data.get("calendar"), dict) \
                and "timezone" not in data["calendar"]:
            data = {**data, "calendar": {**data["calendar"], "timezone": data.get("timezone", "UTC")}}
        return data

    @validates("admins")
    def _admins_have_owner(self, value, **kwargs):
        # marshmallow 4 passes the admins that loaded, without the fields that did not:
        # an admin whose role was refused already has its own error.
        if any("role" not in a for a in value):
            return
        if value and not any(a["role"] == "owner" for a in value):
            raise ValidationError("At least one admin must have the role 'owner'.")

    @validates_schema
    def _codes_unique(self, data, **kwargs):
        errors = {}
        errors.update(_unique(data.get("admins", []), "email", "admins"))
        errors.update(_unique(data.get("sites", []), "code", "sites"))
        errors.update(_unique(data.get("staff", []), "code", "staff"))
        if errors:
            raise ValidationError(errors)


def validate_manifest(data: dict) -> dict:
    """Validate a parsed manifest; return the loaded dict or raise :class:`ManifestError`."""
    if not isinstance(data, dict):
        raise ManifestError(["manifest: A table of tenant settings is required."])
    try:
        loaded = ManifestSchema().load(data)
    except ValidationError as exc:
        raise ManifestError(error_lines(exc.messages)) from None
    for admin in loaded["admins"]:
        admin["email"] = admin["email"].strip().lower()
    for member in loaded["staff"]:
        if "email" in member:
            member["email"] = member["email"].strip().lower()
    return loaded


def parse_manifest(text: str | bytes) -> dict:
    """Parse TOML text and validate it (:func:`validate_manifest`)."""
    if isinstance(text, bytes):
        try:
            text = text.decode("utf-8")
        except UnicodeDecodeError:
            raise ManifestError(["manifest: The file is not UTF-8 text."]) from None
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ManifestError([f"manifest: Not valid TOML ({exc})."]) from None
    return validate_manifest(data)
