"""Output folders: checked writable before any work, and held by one process at a time.

``check_writable(path, field)`` tries to create a temporary file in ``path`` (or, when ``path``
does not exist yet, in its nearest existing ancestor) and removes it again, so a read-only
mount, a parent that is a file or a path under ``/proc`` fails with a ``ConfigError`` naming the
path before any data is loaded or any model trained. Mode bits are not consulted: root may write
into a ``chmod``-read-only folder, but not onto a read-only file system.

``FolderLock(folder)`` takes an exclusive ``fcntl.flock`` on ``folder/.lock`` (and writes the
holder's pid into it) for as long as it is held. A second process asking for the same folder
gets a ``ConfigError`` naming the folder and the holder's pid instead of writing the same files
at the same time. The kernel releases a ``flock`` when its process dies, so the lock file left
behind by a killed run never blocks the next one.
"""

from __future__ import annotations

import fcntl
import os
import tempfile
from pathlib import Path

from metahyper.config import ConfigError

LOCK_NAME = ".lock"


def nearest_existing(path: Path) -> Path:
    """``path`` itself, or the closest ancestor of it that exists."""
    path = Path(os.path.abspath(path))
    while not path.exists() and path != path.parent:
        path = path.parent
    return path


def check_writable(path: str | os.PathLike, field: str, hint: str = "choose another folder") -> None:
    """Raise ``ConfigError`` naming ``field`` and ``path`` (and ending with ``hint``) unless
    files can be created there."""
    path = Path(path)
    existing = nearest_existing(path)
    if not existing.is_dir():
        what = "is" if existing == Path(os.path.abspath(path)) else f"is under {existing}, which is"
        raise ConfigError(f"{field} {path} {what} a file, not a folder; {hint}")
    try:
        with tempfile.TemporaryFile(dir=existing, prefix=".metahyper-write-test-"):
            pass
    except OSError as error:
        place = "" if existing == Path(os.path.abspath(path)) else f" (it would be created in {existing})"
        raise ConfigError(f"{field} {path} is not writable{place}: {error.strerror or error}; "
                          f"{hint}") from None


class FolderLock:
    """An exclusive, process-lifetime lock on a folder (``with FolderLock(out): ...``).

    The folder is created when missing. ``what`` names the folder's role in the message a
    second process gets.
    """

    def __init__(self, folder: str | os.PathLike, what: str = "output folder"):
        self.folder, self.what = Path(folder), what
        self._fd: int | None = None

    def __enter__(self) -> "FolderLock":
        self.folder.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.folder / LOCK_NAME, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 32, 0).decode("ascii", "replace").strip() or "unknown"
            os.close(fd)
            raise ConfigError(f"{self.what} {self.folder} is in use by another metahyper process (pid {holder}); "
                              "wait for it to finish, or use another --out folder") from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode("ascii"), 0)
        self._fd = fd
        return self

    def __exit__(self, *exc: object) -> None:
        if self._fd is not None:
            os.close(self._fd)  # closing the descriptor releases the flock
            self._fd = None
