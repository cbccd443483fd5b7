"""Atomic file writes: readers see the old file or the complete new one, never half of one.

docs/architecture.md section 11: nothing half-written. Content goes to a temporary file in the target's
folder (same file system, so the rename is atomic), is flushed and fsynced, and only then
replaces the target with ``os.replace``. If writing raises, the temporary file is removed and the
previous target is left untouched.
"""

from __future__ import annotations

import os
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Iterator

# mkstemp creates files readable by the owner only; finished files get the usual umask mode.
_UMASK = os.umask(0)
os.umask(_UMASK)


@contextmanager
def atomic_write(
    path: str | os.PathLike, mode: str = "w", encoding: str | None = "utf-8"
) -> Iterator[IO]:
    """Open a temporary file for writing; on a clean exit it atomically becomes ``path``.

    ``mode`` is ``"w"`` (text, ``encoding`` applies) or ``"wb"`` (bytes). Parent folders are
    created. On an exception the temporary file is deleted and ``path`` keeps its old content.
    """
    if mode not in ("w", "wb"):
        raise ValueError(f"atomic_write mode must be 'w' or 'wb', got {mode!r}")
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
    try:
        os.chmod(tmp, 0o666 & ~_UMASK)
        with os.fdopen(fd, mode, encoding=None if mode == "wb" else encoding) as handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_text_atomic(path: str | os.PathLike, text: str) -> None:
    """Write ``text`` (UTF-8) to ``path`` atomically."""
    with atomic_write(path, "w") as handle:
        handle.write(text)
