"""Standards shipped by core's own record kinds (package data: ``*.toml``), registered by
``core.kinds.complaint``."""
