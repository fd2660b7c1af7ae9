"""Every hook a servq plugin may implement, in two groups.

**Contributions** (named ``register_*``) say what a plugin adds to servq: record kinds,
routes, commands, jobs, rule types, standards, event types, KPIs, demo data, a configuration schema.
Each returns a list (or one value, or ``None`` for nothing) and is called once per app
(``register_commands``: once per command line; ``register_config_schema`` and
``register_demo_data``: on demand, for one plugin). Contributions are global: every
loaded plugin's are collected; their *use* is per tenant (a tenant sees a plugin's kinds,
routes, standards and KPIs only while it has enabled the plugin).

**Per-tenant events** (named after the event: ``tenant_onboarded``, ``record_created``,
``record_changed``, ``record_evaluated``, ``records_evaluated``) tell a plugin what happened in one tenant. They
run inside the tenant's transaction, only for core's plugins and the plugins the tenant
has enabled (:func:`core.plugins.app.hooks_for_session`), and return nothing.

A hook implementation may accept any subset of the arguments of its specification.
The names and arguments below are a contract with every plugin: never rename one
(``tests/test_plugins.py`` checks that each is documented in ``docs/plugins.md``, tested
and implemented by ``tests/sample_plugin.py``).

The types below are for readers and type checkers only (imported under
``TYPE_CHECKING``). ``register_rule_types`` and ``register_kpis`` return classes of
packages above this one in core's layers (:mod:`core.scoring`, :mod:`core.kpis`); even a
``TYPE_CHECKING`` import would be a layer edge, so their annotations say ``Any`` and
their docstrings name the class.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Callable

from servq.core.plugins.markers import hookspec

if TYPE_CHECKING:
    import uuid

    import click
    from flask_smorest import Blueprint
    from marshmallow import Schema

    from servq.core.db.tenancy import TenantSession
    from servq.core.models import Evaluation, Record, Tenant
    from servq.core.plugins.jobs import Job
    from servq.core.plugins.kinds import RecordKind


# -- contributions: what a plugin adds (called once per app) -----------------------------


@hookspec
def register_record_kinds() -> list[RecordKind] | None:
    """Return the record kinds this plugin adds.

    Called once when the app is created. Each kind's name must be unique across all
    plugins; a plugin names its kinds ``<plugin id>.<name>``. A tenant can create records
    of a kind only while the plugin that registered it is enabled for the tenant.

    :return: a list of :class:`core.plugins.RecordKind`, or ``None``.
    """


@hookspec
def register_blueprints() -> list[Blueprint] | None:
    """Return the flask-smorest blueprints this plugin serves.

    Called once when the app is created. The blueprint's name must equal the plugin id;
    it is mounted under ``/api/v1/<plugin id>/`` and tagged with the plugin id in the
    OpenAPI document. Every route of it answers 404 to a tenant that has not enabled
    the plugin; the current tenant, session and membership are on ``flask.g`` as in
    core's routes (``g.tenant``, ``g.db``, ``g.membership``).

    :return: a list of :class:`flask_smorest.Blueprint`, or ``None``.
    """


@hookspec
def register_commands() -> list[click.Command] | None:
    """Return click commands to add to the ``servq`` command line.

    Called when the command line starts. The commands are grouped under the plugin id:
    a command ``stats`` of plugin ``property`` runs as ``servq property stats``.

    :return: a list of :class:`click.Command`, or ``None``.
    """


@hookspec
def register_jobs() -> list[Job] | None:
    """Return the background jobs this plugin runs, each under a stable name.

    Called once when the app is created. Each item is a :class:`core.plugins.Job`
    ``Job(name, fn)`` (a ``(name, fn)`` pair). The name is what the job is queued under in
    Redis, so it must not change when code moves: a plugin names its jobs
    ``<plugin id>.<name>`` (``property.reindex``); core's are named after their concept
    (``notify.deliver``). A name registered twice, a plugin's job outside its prefix, or
    an item that is not a ``Job`` makes ``create_app`` fail.

    Only registered jobs can be enqueued (``core.jobs.enqueue(session, name or fn, ...)``).
    A job function takes ``(session, *args)``: the session is scoped to the tenant the job
    was enqueued for, and the function commits its own work. Arguments must be
    JSON-serialisable ids and values, never ORM objects. Delivery is at least once, so a
    job must be idempotent. For this release a job's old name ``module:qualname`` is also
    accepted, so jobs an older release queued still run.

    :return: a list of :class:`core.plugins.Job`, or ``None``.
    """


@hookspec
def register_rule_types() -> list[Any] | None:
    """Return the scoring rule types this plugin adds, a list of :class:`core.scoring.RuleType`.

    Called once per app. A plugin's rule type is named ``<plugin id>.<name>`` (core's
    are ``check``, ``measure``, ``deadline``, ``deduction`` and ``phrases``); the schema
    validates the rule's parameters in a standard and ``compile`` turns them into a pure
    evaluator of ``(values, context)`` returning a :class:`core.scoring.RuleResult`.
    Standards of every tenant may use it once the app has loaded the plugin.

    :return: a list of :class:`core.scoring.RuleType`, or ``None``.
    """


@hookspec
def register_standards() -> list[tuple[str, str]] | None:
    """Return where this plugin's standard files are: a list of ``(package, folder)``.

    Called once per app. Every ``*.toml`` and ``*.json`` file in ``folder`` of
    ``package`` (read with :mod:`importlib.resources`, so it must be shipped as package
    data) is a standard document (see :mod:`core.scoring.standard`). A plugin's standard
    codes start with ``<plugin id>.``. A tenant that enables the plugin adopts each of
    them as version 1 of its own standard, then may override it.

    :return: a list of ``(package name, folder)`` pairs, or ``None``.
    """


@hookspec
def register_event_types() -> dict[str, str] | None:
    """Return the notification event types this plugin emits: ``{name: description}``.

    Called once per app. A plugin's event type is named ``<plugin id>.<name>``
    (``courier.repeat_offence``); core's are listed in :data:`core.notify.outbox.EVENT_TYPES`.
    Registered types are listed by ``GET /api/v1/webhooks/event-types`` and webhooks may
    subscribe to them, or to ``<plugin id>.*``. A plugin emits them with ``emit`` as core
    does.

    :return: a dict of event type to a one-sentence description, or ``None``.
    """


@hookspec
def register_kpis() -> list[Any] | None:
    """Return the KPIs this plugin adds, a list of :class:`core.kpis.Metric`.

    Called once per app. A plugin's metric is named ``<plugin id>.<name>`` (core's have
    plain names: ``records``, ``score``, ``pass_rate`` …) and is asked for by that name in
    ``GET /api/v1/kpis?metrics=...``; only tenants that enabled the plugin can ask for it.
    ``compute`` receives a :class:`core.kpis.KpiQuery` (the tenant-scoped session, the
    period, the grouping, the filters) and returns ``{group key: value}`` computed in SQL
    (see docs/kpis.md).

    :return: a list of :class:`core.kpis.Metric`, or ``None``.
    """


# -- contributions called on demand, for one plugin --------------------------------------


@hookspec
def register_demo_data() -> list[Callable[[TenantSession, Tenant], None]] | None:
    """Return loaders that fill a demo tenant with realistic data.

    ``servq serve --demo`` calls each loader of the plugins a demo tenant has enabled
    as ``loader(session, tenant)`` after the tenant's manifest is onboarded, inside the
    onboarding transaction. A loader must be deterministic (seed any randomness) so a
    demo looks the same every time.

    :return: a list of callables ``(session, tenant) -> None``, or ``None``.
    """


@hookspec
def register_config_schema() -> type[Schema] | None:
    """Return the marshmallow schema class that validates this plugin's configuration.

    Called for one plugin at a time when a tenant enables or configures it (manifest or
    API). The loaded (validated) dictionary is stored; a validation error is a 422 (API)
    or a failed onboarding naming the field (manifest). A plugin with no schema accepts
    only an empty configuration.

    :return: a :class:`marshmallow.Schema` subclass, or ``None``.
    """


# -- per-tenant events: what happened in one tenant (only for the plugins it enabled) ----


@hookspec
def tenant_onboarded(session: TenantSession, tenant: Tenant, manifest: dict[str, Any]) -> None:
    """A tenant manifest has been onboarded (called on every run, first or repeated).

    Runs inside the onboarding transaction, for the plugins the tenant has enabled, so a
    plugin can create what the tenant needs (standards, schedules). It must be
    idempotent: a second onboarding of the same manifest must change nothing. Raising
    :class:`core.plugins.settings.PluginConfigError` (``core.surface.PluginConfigError``)
    fails the onboarding with the lines ``plugins.<plugin id>.<field>: <message>``.

    :param session: the tenant-scoped :class:`sqlalchemy.orm.Session`.
    :param tenant: the :class:`core.models.Tenant`.
    :param manifest: the validated manifest, a ``dict``.
    """


@hookspec
def record_created(session: TenantSession, record: Record, actor_id: uuid.UUID | None) -> None:
    """A record has been created (before the transaction commits, before it is scored).

    Called for the plugins the record's tenant has enabled. An implementation may add
    rows in the same session; an exception aborts the creation.

    **The ``wants`` protocol.** An implementation may carry an attribute
    ``record_created.wants = fn`` with ``fn(session, kind: str) -> bool``: whether it cares
    about records of ``kind`` (it should be cheap, e.g. cached per tenant). It is only an
    optimisation of the bulk paths, never a filter: an implementation without ``wants``
    wants every record.

    **The bulk-path rule.** A single record (``POST /records``,
    :func:`core.records.pipeline.create_record`) always fires the hook, whatever ``wants`` says. A
    bulk write (an import or ``POST /records/batch``, :func:`core.records.ingest.insert_records`)
    asks :func:`core.plugins.manager.wanted` once per chunk, after the chunk's rows are
    inserted and before they are scored: when no enabled implementation wants any of the
    chunk's kinds, the hook is not called for that chunk at all (and no ORM records are
    built for it, unless the caller or a ``record_evaluated`` implementation needs them);
    when at least one does, the hook fires for *every* record of the chunk, of every kind,
    and every enabled implementation hears each of them. So an implementation checks
    ``record.kind`` itself and must not rely on ``wants`` to keep other kinds away.

    :param session: the tenant-scoped session.
    :param record: the new :class:`core.models.Record`.
    :param actor_id: the id of the user who created it, or ``None`` for system work.
    """


@hookspec
def record_changed(session: TenantSession, record: Record, changes: dict[str, list[Any]],
                   actor_id: uuid.UUID | None) -> None:
    """A record has been changed or soft-deleted (before the transaction commits).

    :param session: the tenant-scoped session.
    :param record: the changed :class:`core.models.Record`.
    :param changes: ``{field: [old, new]}`` for every field that changed; a link or
        unlink of a knowledge-base article through ``/records/<id>/kb-links`` is
        ``{"kb_links": [article ids before, after]}`` (the record is scored again after).
    :param actor_id: the id of the user who changed it, or ``None`` for system work.

    Raising :class:`~servq.core.evaluation.errors.RecordInvalid` (the surface's
    ``RecordInvalid``) refuses the change: the API answers 422 and rolls back.
    """


@hookspec
def record_evaluated(session: TenantSession, record: Record, evaluations: list[Evaluation]) -> None:
    """A record has been scored (before the transaction commits).

    Called for the plugins the record's tenant has enabled, after each (re-)evaluation
    of a record against the standards that apply to its kind.

    :param session: the tenant-scoped session.
    :param record: the :class:`core.models.Record`.
    :param evaluations: the stored :class:`core.models.Evaluation` rows, one per standard.
    """


@hookspec
def records_evaluated(session: TenantSession, evaluated: list[tuple[Any, list[Any]]]) -> None:
    """Records have been scored (before the transaction commits): once per write, with
    every record it scored.

    The bulk form of ``record_evaluated``, for a plugin that reacts to a few of many
    records (a failed critical item, a low score). It is called once for a record created,
    changed, moved, re-evaluated over HTTP, once per chunk of ``servq records import`` and
    of ``POST /records/batch``, once per re-scoring job, for the plugins the tenant has
    enabled, after ``record_evaluated``. Unlike ``record_evaluated`` it costs the bulk
    paths nothing per record: the records and evaluations are read-only views, not ORM
    objects (a bulk import builds none for it).

    :param session: the tenant-scoped session.
    :param evaluated: ``[(record, evaluations)]``, one pair per scored record. A record
        reads like a :class:`core.models.Record` (``id``, ``kind``, ``data``,
        ``occurred_at``, ``site_id``, ``staff_id``, ``status``, …); each evaluation like a
        :class:`core.models.Evaluation` (``standard_code``, ``standard_version``,
        ``percent``, ``passed``, ``failed_critical``, ``items``, …), sorted by standard
        code. Neither is to be changed.
    """
