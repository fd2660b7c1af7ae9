"""The after-sales plugin's standards (package data: ``*.toml``), registered by
``plugins.aftersales`` (``register_standards``); listed in plugins/aftersales/README.md."""
