"""The organisation of a tenant: its sites, its staff and its members (who may use it,
in which role). The rules (uniqueness, references, the last owner, audit) live here;
:mod:`core.api.sites`, :mod:`core.api.staff` and :mod:`core.api.members` are HTTP only.

* :mod:`core.org.sites` — the places where service is delivered.
* :mod:`core.org.staff` — the people whose work is recorded and scored.
* :mod:`core.org.members` — memberships (user × tenant × role) and the accounts behind them.
* :mod:`core.org.errors` — why a rule refused a change (the API answers its ``status``).

The functions add to the session; committing is the caller's.
"""
