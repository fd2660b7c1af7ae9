"""The property plugin's standards (package data: ``*.toml``), registered by
``plugins.property`` (``register_standards``); listed in plugins/property/README.md."""
