"""Surveys: SERVQUAL, CSAT, NPS and tenants' own instruments, single-use links, results.

* :mod:`core.surveys.servqual` — the built-in instruments (data).
* :mod:`core.surveys.instruments` — the instrument format, forms and columns.
* :mod:`core.surveys.catalogue` — the tenant's own instruments: create, change (versions), delete.
* :mod:`core.surveys.store` — surveys (created with their checks and triggers, changed,
  deleted) and stored responses.
* :mod:`core.surveys.errors` — why a rule refused a change (the API answers its ``status``).
* :mod:`core.surveys.answers` — checking answers and turning them into stored rows.
* :mod:`core.surveys.invitations` — link tokens, invitations, triggers.
* :mod:`core.surveys.results` — aggregation in SQL.
* :mod:`core.surveys.plugin` — the ``record_created``/``record_changed`` hooks (triggers).
"""
