"""The HTTP API: flask-smorest, OpenAPI at /api/v1/openapi.json, docs at /api/v1/docs.

HTTP only: schemas and MethodViews over the concept packages of core.

* :mod:`core.api.app` — ``init_app``: flask-smorest, the blueprints, the OpenAPI document.
* :mod:`core.api.errors` — the JSON answer to database errors and unexpected exceptions.
* :mod:`core.api.context` — who is calling: authentication, permissions, the tenant's kinds.
* :mod:`core.api.blueprint`, :mod:`core.api.pagination`, :mod:`core.api.jsonio` — the
  blueprint with ETag helpers, pages, JSON through orjson.
* one module per resource (``records``, ``sites``, ``surveys``, …).
"""
