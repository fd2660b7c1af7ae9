"""Phrase libraries shipped as data (``<name>.toml``): see :mod:`servq.core.scoring.phrases`."""
