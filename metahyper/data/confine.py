"""Paths from data sets stay inside their data root.

A data root's files name other files (a CSV row ``../../x.png``, a label line) and may be links
(a ``class_labels.txt`` linked to ``/etc/passwd``). ``confined(root, path)`` resolves ``path``,
following every link, and returns it only when it lies inside ``root`` (itself resolved: a root
that is a link to the real data folder is fine); otherwise a ``DataFormatError`` names ``path``
as the data set has it and says that it leads outside the root, without the target's name or any
of its content. Every reader resolves the files it opens through it.
"""

from __future__ import annotations

import os
from pathlib import Path

from metahyper.errors import DataFormatError


def confined(root: str | os.PathLike, path: str | os.PathLike) -> Path:
    """``path`` resolved, checked to lie inside ``root`` (module docstring)."""
    base, target = Path(root).resolve(), Path(path).resolve()
    if target != base and base not in target.parents:
        how = "a link that leads" if _through_link(Path(path)) else "a path that leads"
        raise DataFormatError(f"{path}: {how} outside the data folder {root}; refused (place the file itself inside "
                              f"{root}, or make {root} the link)")
    return target


def _through_link(path: Path) -> bool:
    """Whether ``path`` or one of its parents is a symbolic link."""
    return any(p.is_symlink() for p in (path, *path.parents))
