"""The plugin surface: the one module of core that plugins import from.

Built-in and third-party plugins write ``from servq import hookimpl, RecordKind, ...`` (the
top-level package hands out the names below) and import nothing else of servq;
``tests/test_plugin_surface.py`` fails when a module under ``plugins/`` or ``examples/``
reaches past it. Core's inner layout may change; the names below do not without notice.
What a plugin needs and the surface lacks is added here, with a description and a test.

Importing this module is cheap and has no side effects: each name is loaded from its
owning module on first use (PEP 562 ``__getattr__``).

Hooks and kinds
  ``hookimpl``: the pluggy marker for a plugin's hook implementations (see
  ``core/plugins/hookspecs.py`` for the hooks and docs/plugins.md).
  ``RecordKind``: a record kind a plugin contributes (``register_record_kinds``): key,
  JSON schema of its ``data``, optional workflow and seed standard.
  ``Workflow``: the states and transitions of a record kind.
  ``Transition``: one allowed move of a workflow, with the permission it needs.
  Guards and stalls (docs/calendars-and-workflows.md §2): ``Transition(..., requires={path:
  test})`` refuses the action (409, ``unmet``) until the record's ``data`` meets every
  condition (``[values]``, ``{"present": true}``, ``{"not": [values]}``); ``Workflow(...,
  stalled_after="3 working days" | {state: limit}, stalled_notify=(roles,),
  stalled_action=True)`` notifies ``record.stalled`` once per stall of a record not moved.
  ``TransitionRefused``: ``transition`` refused the action from the record's status
  (``allowed``); ``TransitionBlocked``, one of them: the guards fail (``unmet``: each
  ``{field, requires, message}``). ``unmet_conditions(requires, data)``: that list for any
  condition set of the same vocabulary, for a plugin checking its own.

HTTP routes (``register_blueprints``)
  ``Blueprint``: core's flask-smorest blueprint (ETag helpers, tenant URL prefix).
  ``require``: decorator ``require("read"|"write"|"manage")``: authenticates the request and
  checks the caller's permission, else 401/403.
  ``abort``: flask-smorest's ``abort(status, message=..., errors=...)``: the JSON error shape.
  ``PageArgs``: the ``page``/``per_page`` query schema; ``paginate(session, stmt, args,
  headers)`` returns one page and fills the pagination headers; ``PAGINATION_HEADER_DOC``
  documents them in OpenAPI.
  ``request_session``: the current request's tenant-bound database session (its
  ``tenant_id`` is the current tenant).
  ``actor_id``: the id of the authenticated user making the request (``None`` outside one).

Time
  ``utcnow``: the current instant, aware UTC (tests pin it with time_machine).
  ``utc_instant``: a marshmallow validator: the instant must be representable in UTC.
  ``UTCDateTime``: the SQLAlchemy column type that stores and returns aware UTC.

Models (SQLAlchemy, tenant-scoped by row-level security)
  ``Record``, ``Site``, ``Staff``, ``Schedule``, ``Clock``, ``StandardVersion``, ``Survey``,
  ``TenantPlugin``: the mapped tables of records, sites, staff, schedules, deadline clocks,
  standard versions, surveys and a tenant's plugin settings.
  ``Evaluation``: the latest evaluation of a record against a standard (one row per pair;
  ``percent``, ``passed``, ``standard_code`` for KPIs in SQL).
  ``Action``: corrective actions (``record_id``, ``standard_code``, ``item_code``,
  ``source``), e.g. to count how often an item failed for a person in a month.

Records
  ``create_record(session, kinds, payload, actor_id, now=...)``: validate a payload and add
  a record, as ``POST /records`` does. ``update_record(session, kinds, record, payload,
  actor_id, now=...)``: change one; both return/record the audited changes.
  ``transition(session, kinds, record, action, note=..., at=..., actor_id=..., now=...)``: take
  a workflow action on a record. ``kinds`` is ``get_plugins().kinds_for(enabled_plugin_ids(session))``.
  ``evaluate_record(session, record, now=..., actor_id=...)``: score a record against the
  standards in force that apply to it.

Knowledge base (docs/knowledge-base.md)
  ``KbArticle``, ``KbLink``: the mapped tables of articles and of records' links to them.
  ``kb_suggest(session, record, kind=None, limit=3)``: the best published articles for a
  record, ``[{id, code, title, product, category, score}]`` best first, as ``GET
  /records/<id>/kb-suggestions`` ranks them; ``kind`` (the record's ``RecordKind``) says
  through ``kb_text``, ``kb_product`` and ``kb_category`` which fields of ``data`` count.
  ``kb_find_articles(session, refs)``: ``{ref: KbArticle}`` for the refs (an article's id
  or ``code``) naming an article of the tenant. ``kb_link(session, record, article,
  actor_id=..., now=...)``: link a record to a published article (pins its version, counts
  and audits the link) as ``POST /records/<id>/kb-links`` does, without firing
  ``record_changed`` (the caller is usually in it); ``KbRefused`` (``status``, ``message``):
  it refused (not published, linked already). ``kb_create_article(session, body,
  actor_id=..., now=...)``: a new draft article (``body``: ``code``, ``title {en, zh}``,
  ``problem``, ``symptoms``, ``cause``, ``solution_steps``, ``product``, ``category``,
  ``applies_to``, ``review_every_days``, ``source_record_id``) as ``POST /kb/articles``
  writes it; ``kb_transition(session, article, action, actor_id=..., role=..., now=...)``:
  move it on (``submit``, ``publish``, ``review``, ``retire``; ``role`` is checked).
  ``RecordInvalid(errors, message)``: raised from ``record_created`` or ``record_changed``
  (or anything a write calls) it refuses the write: 422 with ``errors`` (marshmallow-shaped,
  ``{"data": {"field": ["..."]}}``) and nothing is changed.

Schedules
  ``create_schedule(session, key=..., ...)``: an idempotent recurring obligation;
  ``update_schedule(session, schedule, changes)``: change one; ``scan_schedules(session, now)``:
  report the periods missed since the last scan; ``compliance(session, schedule, since,
  until, now)``: a schedule's periods with their outcome; ``matches_statement(session,
  schedule, periods, tag)``: ``SELECT tag, n, first matching record id`` per period;
  ``schedule_zone(session)``: the tenant's time zone; ``Recurrence(schedule, zone)``: a schedule's
  recurrence, whose ``periods(since, until)`` are its periods; ``MAX_PERIODS`` and
  ``TooManyPeriods``: the cap on periods one question may span. Quotas are fields of
  ``create_schedule``: ``min_count``, ``per="staff"`` with ``staff_selector`` and
  ``staff_field``, ``working_days``; ``compliance(..., staff_id=...)`` gives one person's
  periods; ``matches_statement(..., count=True)`` adds ``n_records`` and ignores quotas.

Standards
  ``adopt_visible(session, actor_id=None)``: adopt every shipped standard the tenant sees;
  ``change_standard(session, code, overrides=..., note=...)``: a new version of a standard;
  ``merge_patch(document, patch)``: RFC 7386 JSON merge patch of overrides.
  ``phrase_libraries()``: the phrase libraries shipped with core (``{name: {title, kinds:
  {kind: {title, phrases}}, review_only}}``), forbidden in a ``phrases`` rule as ``"@name"``
  or ``"@name.kind"``. ``placeholder_values(session)``: the values the ``<placeholders>`` of
  phrases take for the session's tenant (from plugin settings; ``company``: its name), e.g.
  to warn at onboarding that a standard's ``<hotline>`` has no value.
  Rule types (``register_rule_types``): ``RuleType(name, schema, compile, description)``;
  the evaluator ``compile`` returns answers ``RuleResult(outcome, evidence)`` with an
  ``Outcome`` (``PASS``, ``FAIL``, ``NA``, ``PENDING``) and raises ``RuleInputError``
  for a value it cannot judge (422 naming the item).

Surveys
  ``INSTRUMENT_CODE_RE``: the pattern of an instrument code.
  ``find_instrument(session, code)``: a built-in or the tenant's instrument, or ``None``.
  ``create_survey(session, doc, version, title=..., ...)``: a survey of an instrument, checked
  (form, importance points, ``triggers`` against ``kinds``) and audited, as ``POST /surveys`` makes it.
  ``create_invitation(session, survey, customer=..., ...)``: a single-use survey link.
  ``item_scale(doc, item)`` and ``item_columns(form, item)``: an item's scale and answer columns.
  ``score_answers(doc, form, importance_mode, answers, importance)``: check and score answers.
  ``store_response(session, survey, invitation, scored, answers=..., submitted_at=...)``:
  store a scored response with its rows and roll-ups.

KPIs
  ``Metric``: a KPI metric a plugin contributes (``register_kpi_metrics``); ``KpiQuery``: the
  parsed question (period, grouping, filters) a metric answers; ``KpiError``: refuse a question
  with a 422; ``key_text``: a group key as text.
  ``Evaluation``: the stored evaluations (a record scored against a standard: ``total``,
  ``percent``, ``passed``, ``items``); ``evaluation_items(q)``: ``Evaluation.items`` as a
  table-valued function for the query's dialect (``.c.value`` is one item's JSON: ``code``,
  ``outcome``, ``points``, ``max_points``), for a metric over item points, e.g. the points a
  deduction standard takes off per item.

Jobs (``register_jobs``)
  ``Job(name, fn)``: a background job a plugin registers; ``name`` (``<plugin id>.<name>``)
  is what it is queued under, never a module path, so moving code leaves queued jobs runnable.
  ``enqueue(session, name_or_fn, tenant_id, *args)``: run a registered job after the
  transaction commits (rq with Redis, inline without); ``UnknownJob``: it was not registered.

Audit, settings, plugins
  ``audit(session, entity, entity_id, action, actor_id, changes)``: append an audit entry.
  ``PluginConfigError(plugin_id, messages)``: a plugin's configuration is invalid (raised from
  ``tenant_onboarded`` it fails the onboarding naming ``plugins.<id>.<field>``).
  ``get_plugins()``: the application's plugin registry (kinds, metrics, hooks);
  ``enabled_plugin_ids(session)``: the ids of the plugins the tenant has enabled;
  ``plugin_settings(session, plugin_id)``: the configuration the tenant stored for a plugin
  (``{}`` when none; read once per transaction, so a hook may call it for every record);
  ``transaction_memo(session, plugin_id)``: a dictionary the plugin keeps things in for the
  rest of the transaction (what a bulk hook read once rather than at every chunk).
  ``emit(session, event_type, payload, roles=(...), dedupe_key=...)``: store a
  notification in the outbox (``GET /notifications``, webhooks subscribed to ``*``), in
  the caller's transaction; at most once per tenant and ``dedupe_key``;
  ``emit_many(session, [(event_type, payload, roles, dedupe_key), ...])``: as ``emit`` for
  each, in a few statements whatever their number.

Command line (``register_commands``)
  ``cli_app()``: the app of the running ``servq`` command (made once, its database checked,
  an app context pushed); ``cli_tenant(app, slug)``: the tenant with that slug, or a one-line
  error; ``cli_session(app, tenant_id)``: a database session bound to that tenant (a context
  manager); ``CliError(message)``: end the command with ``error: <message>`` and status 1.
"""

from __future__ import annotations

import importlib
from typing import Any

_SOURCES: dict[str, tuple[str, str]] = {
    # hooks and kinds
    "hookimpl": ("servq.core.plugins", "hookimpl"),
    "RecordKind": ("servq.core.plugins", "RecordKind"),
    "Workflow": ("servq.core.plugins", "Workflow"),
    "Transition": ("servq.core.plugins", "Transition"),
    # guards and stalls
    "TransitionRefused": ("servq.core.records.workflows", "TransitionRefused"),
    "TransitionBlocked": ("servq.core.records.workflows", "TransitionBlocked"),
    "unmet_conditions": ("servq.core.plugins.conditions", "unmet"),
    # HTTP routes
    "Blueprint": ("servq.core.api.blueprint", "Blueprint"),
    "require": ("servq.core.api.context", "require"),
    "actor_id": ("servq.core.api.context", "actor_id"),
    "abort": ("flask_smorest", "abort"),
    "PageArgs": ("servq.core.api.pagination", "PageArgs"),
    "paginate": ("servq.core.api.pagination", "paginate"),
    "PAGINATION_HEADER_DOC": ("servq.core.api.pagination", "PAGINATION_HEADER_DOC"),
    "request_session": ("servq.core.db.session", "request_session"),
    # time
    "utcnow": ("servq.core.db", "utcnow"),
    "UTCDateTime": ("servq.core.db", "UTCDateTime"),
    "utc_instant": ("servq.core.records.pipeline", "utc_instant"),
    # models
    "Record": ("servq.core.models", "Record"),
    "Site": ("servq.core.models", "Site"),
    "Staff": ("servq.core.models", "Staff"),
    "Schedule": ("servq.core.models", "Schedule"),
    "Clock": ("servq.core.models", "Clock"),
    "StandardVersion": ("servq.core.models", "StandardVersion"),
    "Survey": ("servq.core.models", "Survey"),
    "TenantPlugin": ("servq.core.models", "TenantPlugin"),
    "Evaluation": ("servq.core.models", "Evaluation"),
    "Action": ("servq.core.models", "Action"),
    # records
    "create_record": ("servq.core.records.pipeline", "create_record"),
    "update_record": ("servq.core.records.pipeline", "update_record"),
    "transition": ("servq.core.records.workflows", "transition"),
    "evaluate_record": ("servq.core.records.evaluate", "evaluate_record"),
    # knowledge base
    "KbArticle": ("servq.core.models", "KbArticle"),
    "KbLink": ("servq.core.models", "KbLink"),
    "kb_suggest": ("servq.core.kb.suggest", "suggest"),
    "kb_find_articles": ("servq.core.kb.store", "find_articles"),
    "kb_link": ("servq.core.kb.store", "link"),
    "kb_create_article": ("servq.core.kb.store", "create_article"),
    "kb_transition": ("servq.core.kb.store", "transition"),
    "KbRefused": ("servq.core.kb.store", "KbRefused"),
    "RecordInvalid": ("servq.core.evaluation.errors", "RecordInvalid"),
    # schedules
    "create_schedule": ("servq.core.deadlines.schedules", "create_schedule"),
    "update_schedule": ("servq.core.deadlines.schedules", "update_schedule"),
    "scan_schedules": ("servq.core.deadlines.schedules", "scan"),
    "compliance": ("servq.core.deadlines.schedules", "compliance"),
    "matches_statement": ("servq.core.deadlines.schedules", "matches_statement"),
    "schedule_zone": ("servq.core.deadlines.schedules", "schedule_zone"),
    "Recurrence": ("servq.core.deadlines.periods", "Recurrence"),
    "MAX_PERIODS": ("servq.core.deadlines.periods", "MAX_PERIODS"),
    "TooManyPeriods": ("servq.core.deadlines.periods", "TooManyPeriods"),
    # standards
    "adopt_visible": ("servq.core.standards", "adopt_visible"),
    "change_standard": ("servq.core.standards", "change_standard"),
    "merge_patch": ("servq.core.standards.overrides", "merge_patch"),
    "phrase_libraries": ("servq.core.scoring.phrases", "libraries"),
    "placeholder_values": ("servq.core.evaluation.placeholders", "placeholder_values"),
    "RuleType": ("servq.core.scoring.registry", "RuleType"),
    "RuleResult": ("servq.core.scoring.rules", "RuleResult"),
    "Outcome": ("servq.core.scoring.rules", "Outcome"),
    "RuleInputError": ("servq.core.scoring.rules", "RuleInputError"),
    # surveys
    "INSTRUMENT_CODE_RE": ("servq.core.surveys.instruments", "CODE_RE"),
    "find_instrument": ("servq.core.surveys.store", "find_instrument"),
    "create_survey": ("servq.core.surveys.store", "create_survey"),
    "store_response": ("servq.core.surveys.store", "store_response"),
    "create_invitation": ("servq.core.surveys.invitations", "create_invitation"),
    "item_scale": ("servq.core.surveys.instruments", "item_scale"),
    "item_columns": ("servq.core.surveys.instruments", "item_columns"),
    "score_answers": ("servq.core.surveys.answers", "score_answers"),
    # KPIs
    "Metric": ("servq.core.kpis", "Metric"),
    "KpiQuery": ("servq.core.kpis", "KpiQuery"),
    "KpiError": ("servq.core.kpis", "KpiError"),
    "key_text": ("servq.core.kpis", "key_text"),
    "Evaluation": ("servq.core.models", "Evaluation"),
    "evaluation_items": ("servq.core.kpis.timing", "item_elements"),
    # jobs
    "Job": ("servq.core.plugins", "Job"),
    "enqueue": ("servq.core.jobs", "enqueue"),
    "UnknownJob": ("servq.core.jobs", "UnknownJob"),
    # audit, settings, plugins
    "audit": ("servq.core.audit", "audit"),
    "PluginConfigError": ("servq.core.plugins.settings", "PluginConfigError"),
    "get_plugins": ("servq.core.plugins.app", "get_plugins"),
    "enabled_plugin_ids": ("servq.core.plugins.app", "enabled_plugin_ids"),
    "plugin_settings": ("servq.core.plugins.settings", "plugin_settings"),
    "transaction_memo": ("servq.core.plugins.settings", "transaction_memo"),
    "emit": ("servq.core.notify.outbox", "emit"),
    "emit_many": ("servq.core.notify.outbox", "emit_many"),
    # command line
    "cli_app": ("servq.core.commands", "get_app"),
    "cli_tenant": ("servq.core.commands", "tenant_by_slug"),
    "cli_session": ("servq.core.commands", "open_session"),
    "CliError": ("servq.core.commands", "CliError"),
}

__all__ = sorted(_SOURCES)


def __getattr__(name: str) -> Any:
    """Load ``name`` from its owning module on first use and keep it here."""
    try:
        module, attribute = _SOURCES[name]
    except KeyError:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}") from None
    value = getattr(importlib.import_module(module), attribute)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
