"""The error every data reader raises for a file it cannot use (a leaf module, so that the readers,
``stores``, ``bounded`` and ``confine`` share it without importing each other)."""

from __future__ import annotations


class DataFormatError(ValueError):
    """A data file is missing or malformed; the message names the file and the problem."""
