"""Standards shipped by core's own record kinds (package data: ``*.toml``), registered by
``core.records.kinds.complaint``."""
