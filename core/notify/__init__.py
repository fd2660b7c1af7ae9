"""Notifications: the outbox and webhooks, apart.

* :mod:`core.notify.outbox` — event types, ``emit``/``emit_many``: events stored with the
  change that caused them, one delivery per subscribed webhook.
* :mod:`core.notify.delivery` — the ``notify.deliver`` job: signed POSTs, retries, and the
  refusal of private addresses.
* :mod:`core.notify.webhooks` — the tenant's webhooks: create, change, delete, ping, redeliver.
"""
