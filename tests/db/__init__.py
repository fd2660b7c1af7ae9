"""The storage floor's guards (core/db): tenancy (ORM filter, stamping, row-level
security), the round trips a request costs, and the fast lane's one-statement INSERT.
Whoever touches core/db runs these, on SQLite and on PostgreSQL (TEST_DATABASE_URL)."""
