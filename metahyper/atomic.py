"""Atomic file writes: readers see the old file or the complete new one, never half of one.

docs/architecture.md section 11: nothing half-written. Content goes to a temporary file in the target's
folder (same file system, so the rename is atomic), is flushed and fsynced, and only then
replaces the target with ``os.replace``. If writing raises, the temporary file is removed and the
previous target is left untouched; a full disk raises ``metahyper.files.UnusableFileError``
naming the file. SIGINT and SIGTERM are held while a file is written and delivered after it
(``metahyper.interrupts.deferred_interrupts``): an interrupt never cuts a write short, nor turns
into another error inside a writer. A process killed outright (SIGKILL) can still leave a
temporary file (``.<name>.<random>.tmp``); ``remove_stale_temporaries`` clears a folder of them
on the next run, by whoever holds the folder's lock.
"""

from __future__ import annotations

import os
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Iterator

from metahyper.files import disk_full, write_failed
from metahyper.interrupts import deferred_interrupts

# mkstemp creates files readable by the owner only; finished files get the usual umask mode.
_UMASK = os.umask(0)
os.umask(_UMASK)
TMP_SUFFIX = ".tmp"


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
    with deferred_interrupts():
        target.parent.mkdir(parents=True, exist_ok=True)
        try:
            fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=TMP_SUFFIX)
        except OSError as error:
            if disk_full(error):
                raise write_failed(target, error) from None
            raise
        try:
            os.chmod(tmp, 0o666 & ~_UMASK)
            with os.fdopen(fd, mode, encoding=None if mode == "wb" else encoding) as handle:
                yield handle
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(tmp, target)
        except BaseException as error:
            Path(tmp).unlink(missing_ok=True)
            if disk_full(error):
                raise write_failed(target, error) from None
            raise


def remove_stale_temporaries(folder: str | os.PathLike) -> list[Path]:
    """Delete the temporary files ``atomic_write`` left in ``folder`` (not below it) when its
    process was killed mid-write; returns them. Call it only holding the folder's lock: another
    process's write in progress would lose its temporary file."""
    stale = [p for p in Path(folder).glob(f".*{TMP_SUFFIX}") if p.is_file() and not p.is_symlink()]
    for path in stale:
        path.unlink(missing_ok=True)
    return stale


def write_text_atomic(path: str | os.PathLike, text: str) -> None:
    """Write ``text`` (UTF-8) to ``path`` atomically."""
    with atomic_write(path, "w") as handle:
        handle.write(text)
