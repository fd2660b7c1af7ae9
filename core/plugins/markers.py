"""pluggy markers named after the project."""

import pluggy

PROJECT = "servq"

hookspec = pluggy.HookspecMarker(PROJECT)
hookimpl = pluggy.HookimplMarker(PROJECT)
