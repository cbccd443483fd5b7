"""Output folders: checked writable before any work, and locks that say who holds them.

``check_writable(path, field)`` tries to create a temporary file in ``path`` (or, when ``path``
does not exist yet, in its nearest existing ancestor) and removes it again, so a read-only
mount, a parent that is a file or a path under ``/proc`` fails with a ``ConfigError`` naming the
path before any data is loaded or any model trained. Mode bits are not consulted: root may write
into a ``chmod``-read-only folder, but not onto a read-only file system.

``FolderLock(folder)`` takes an exclusive ``fcntl.flock`` on ``folder/.lock`` and writes the
holder into it (one JSON line: pid, host, SLURM job id when there is one, start time and the
caller's ``info``). By default a second process asking for the same folder gets a
``ConfigError`` naming the folder and the holder instead of writing the same files at the same
time; ``wait=True`` makes it wait its turn instead (short critical sections, such as writing a
suite folder's shared files). ``lock_holder(folder)`` tells, without taking the lock, whether
someone holds it and who. The kernel releases a ``flock`` when its process dies, so the lock
file left behind by a killed run never blocks the next one; the file itself is never removed
(removing a lock file races with a process that has just opened it).
"""

from __future__ import annotations

import fcntl
import json
import os
import socket
import tempfile
import time
from pathlib import Path
from typing import Any

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


def slurm_job_id() -> str | None:
    """This process's SLURM job (``ARRAYJOB_TASK`` for an array task), or None outside SLURM."""
    array, task = os.environ.get("SLURM_ARRAY_JOB_ID"), os.environ.get("SLURM_ARRAY_TASK_ID")
    return f"{array}_{task}" if array and task else os.environ.get("SLURM_JOB_ID")


def describe_holder(holder: dict[str, Any]) -> str:
    """``pid 123`` (on another host: ``pid 123 on node7``; in SLURM: ``, SLURM job 55_1``)."""
    text = f"pid {holder.get('pid', 'unknown')}"
    if holder.get("host") and holder["host"] != socket.gethostname():
        text += f" on {holder['host']}"
    return text + (f", SLURM job {holder['job']}" if holder.get("job") else "")


def _read_holder(fd: int) -> dict[str, Any]:
    """The holder a lock file names (its JSON line, or the bare pid older versions wrote)."""
    text = os.pread(fd, 4096, 0).decode("utf-8", "replace").strip()
    try:
        holder = json.loads(text)
    except ValueError:
        return {"pid": text or "unknown"}
    return holder if isinstance(holder, dict) else {"pid": text}


def lock_holder(folder: str | os.PathLike) -> dict[str, Any] | None:
    """Who holds ``folder``'s lock (``FolderLock``'s JSON fields), or None when nobody does.

    Probes with a shared lock that is released at once, so it neither creates nor changes a
    file; a ``FolderLock`` asked for at that very instant retries (``FolderLock.RETRIES``).
    """
    path = Path(folder) / LOCK_NAME
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return None
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except BlockingIOError:
        return _read_holder(fd)
    else:
        fcntl.flock(fd, fcntl.LOCK_UN)
        return None
    finally:
        os.close(fd)


def busy_error(what: str, folder: Path, holder: dict[str, Any]) -> ConfigError:
    """The error a process gets for a folder that another one holds."""
    return ConfigError(f"{what} {folder} is in use by another metahyper process ({describe_holder(holder)}); "
                       "wait for it to finish, or use another --out folder")


class FolderLock:
    """An exclusive, process-lifetime lock on a folder (``with FolderLock(out): ...``).

    The folder is created when missing. ``what`` names the folder's role in the message a
    second process gets; ``wait`` makes a second process wait instead; ``info`` (JSON values)
    is written into the lock file beside the holder's pid, host, SLURM job and start time.
    """

    RETRIES, RETRY_S = 3, 0.05  # a ``lock_holder`` probe holds the lock for microseconds

    def __init__(self, folder: str | os.PathLike, what: str = "output folder", *, wait: bool = False,
                 info: dict[str, Any] | None = None):
        self.folder, self.what, self.wait, self.info = Path(folder), what, wait, info or {}
        self._fd: int | None = None

    def _acquire(self, fd: int) -> None:
        if self.wait:
            fcntl.flock(fd, fcntl.LOCK_EX)
            return
        for attempt in range(self.RETRIES):
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                return
            except BlockingIOError:
                if attempt == self.RETRIES - 1:
                    raise
                time.sleep(self.RETRY_S)

    def __enter__(self) -> "FolderLock":
        self.folder.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.folder / LOCK_NAME, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            self._acquire(fd)
        except BlockingIOError:
            holder = _read_holder(fd)
            os.close(fd)
            raise busy_error(self.what, self.folder, holder) from None
        holder = {"pid": os.getpid(), "host": socket.gethostname(), "job": slurm_job_id(), "started": time.time(),
                  **self.info}
        os.ftruncate(fd, 0)
        os.pwrite(fd, (json.dumps(holder) + "\n").encode("utf-8"), 0)
        self._fd = fd
        return self

    def __exit__(self, *exc: object) -> None:
        if self._fd is not None:
            os.close(self._fd)  # closing the descriptor releases the flock
            self._fd = None


def shared_files_lock(suite_dir: str | os.PathLike) -> FolderLock:
    """The lock (``suite_dir/.lock``, waited for) under which processes write the files that the
    runs of a suite folder share: ``suite.yaml``, the runs' ``config.yaml``, the fixed episode
    sets and the report. Held only while writing them, so runs proceed side by side."""
    return FolderLock(suite_dir, "suite folder", wait=True)
