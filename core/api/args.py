"""Shared pieces of query (and body) arguments: bounded integers.

- :class:`Int`: every integer a client sends in a query (``page``, ``page_size``,
  ``version``, ``limit``…) is bounded, so a number too large for the database's
  ``INTEGER`` column (``?version=3448743901184497352179712``: an overflow and a 500 on
  SQLite, an error on PostgreSQL) is a 422 naming the argument and its range.

The ``q`` filter of the sites and staff lists is :func:`core.org.sites.text_search`.
"""

from __future__ import annotations

from marshmallow import fields, validate

#: The range of a database ``INTEGER`` (32 bits on PostgreSQL): the widest an integer
#: argument may be unless its field says narrower.
INT_MIN, INT_MAX = -(2**31), 2**31 - 1


class Int(fields.Integer):
    """An integer argument within ``[min, max]``, which default to the range of a
    database ``INTEGER``; a value outside (however many digits) is a 422."""

    def __init__(self, *, min: int | None = None, max: int | None = None, **kwargs):
        low = INT_MIN if min is None else min
        high = INT_MAX if max is None else max
        if not INT_MIN <= low <= high <= INT_MAX:
            raise ValueError(f"Int range [{low}, {high}] is not within [{INT_MIN}, {INT_MAX}]")
        validators = kwargs.pop("validate", None) or []
        if callable(validators):
            validators = [validators]
        super().__init__(validate=[validate.Range(min=low, max=high), *validators], **kwargs)

