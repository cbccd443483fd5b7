"""One error for every file the package wrote or reads that cannot be used, and the reads that raise it.

``UnusableFileError`` (a ``ValueError``; the command line exits with status 2 on it,
``metahyper.exits``) names the file, what is wrong with it and what to do: a truncated or
edited ``done.json``/``results.json``/``skipped.json``, a damaged data cache or episode set, a
file whose SHA-256 differs from the manifest that protects it (``metahyper.pipeline.manifest``), or a
write that failed because the disk is full. No traceback: the file is the user's to fix.

* ``read_json(path, remedy, kind)``: a JSON file holding a ``kind`` (dict or list), or the error;
* ``sha256_file(path)``: hex SHA-256 of a file's bytes, read in chunks;
* ``disk_full(error)``: whether an error (or one it was raised from, as ``torch.save`` wraps the
  ``OSError`` of its writes in a ``RuntimeError``) is a full disk or quota;
* ``write_failed(path, error)``: the ``UnusableFileError`` that says so, naming the file.
"""

from __future__ import annotations

import errno
import hashlib
import json
import os
from pathlib import Path
from typing import Any

FULL_DISK = (errno.ENOSPC, errno.EDQUOT)


class UnusableFileError(ValueError):
    """A file the package wrote or reads cannot be used; the message names it and what to do."""


def sha256_file(path: str | os.PathLike, chunk: int = 1 << 20) -> str:
    """Hex sha256 of a file's bytes."""
    digest = hashlib.sha256()
    with open(path, "rb") as file:
        while block := file.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def read_json(path: str | os.PathLike, remedy: str, kind: type = dict) -> Any:
    """The JSON value of ``path``, which must be a ``kind``; ``UnusableFileError`` naming the
    file, the problem and ``remedy`` (what to do) when it is unreadable, truncated or another
    kind of value. The error quotes none of the file's content."""
    try:
        value = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError) as error:  # ValueError: invalid JSON or UTF-8
        reason = error.strerror if isinstance(error, OSError) and error.strerror else type(error).__name__
        raise UnusableFileError(f"{path} is unreadable or not valid JSON (truncated or edited: {reason}); "
                                f"{remedy}") from None
    if not isinstance(value, kind):
        raise UnusableFileError(f"{path} holds a JSON {type(value).__name__}, not the {kind.__name__} it should "
                                f"(edited?); {remedy}")
    return value


def disk_full(error: BaseException | None) -> bool:
    """Whether ``error``, or an error in its chain of causes, is ENOSPC or EDQUOT."""
    seen = 0
    while error is not None and seen < 10:
        if isinstance(error, OSError) and error.errno in FULL_DISK:
            return True
        error, seen = error.__cause__ or error.__context__, seen + 1
    return False


def write_failed(path: str | os.PathLike, error: BaseException) -> UnusableFileError:
    """The error for a write of ``path`` that ran out of space (``disk_full(error)``): nothing
    half-written is left in its place; free space and rerun the command to go on."""
    return UnusableFileError(f"{path} could not be written: no space left on its device (disk full or quota "
                             f"reached: {type(error).__name__}). Nothing half-written was kept; free space on "
                             f"{Path(path).absolute().parent} and run the same command again to resume")
