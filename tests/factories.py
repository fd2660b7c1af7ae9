"""Test factories: tenants, users and tokens made straight in the database.

Every test runs inside a tenant: ``factory.tenant("acme")`` gives a tenant with an owner
and an authenticated API client (``t.api``); ``t.as_role("viewer")`` another member's.
They live in :mod:`servq.testing`, the pytest plugin servq ships for plugins' own test
suites, so that servq's tests and a plugin's use the same ones.
"""

from __future__ import annotations

from servq.testing import (PASSWORD, TEST_TOKEN_TTL, ApiClient, Factory, TenantHandle,  # noqa: F401
                           password_hash)
