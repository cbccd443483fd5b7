"""Plain names: a suite's ``name`` picks its default output folder (``runs/<name>``), so it must
name one folder right there, not a path.

A plain name is 1 to ``MAX_CHARS`` letters, digits, ``-``, ``_`` and ``.``, and is neither ``.``
nor ``..``: no ``/``, no absolute path, no way out of ``runs/``. ``--out`` is the one way to
write a suite anywhere else.
"""

from __future__ import annotations

import re

MAX_CHARS = 100
_PLAIN = re.compile(r"^[A-Za-z0-9_.-]+$")


def check_plain_name(name: str, field: str) -> None:
    """Raise ``ValueError`` naming ``field`` unless ``name`` is a plain name (module docstring)."""
    if not isinstance(name, str) or not _PLAIN.match(name) or name in (".", "..") or len(name) > MAX_CHARS:
        shown = repr(name) if len(str(name)) <= MAX_CHARS else f"{str(name)[:MAX_CHARS]!r}..."
        raise ValueError(f"{field} = {shown} must be a plain name of at most {MAX_CHARS} letters, digits and -_. "
                         "(not '.' or '..'): it names the output folder runs/<name>; to write elsewhere, pass --out")
