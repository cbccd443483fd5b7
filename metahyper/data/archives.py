"""Extracting downloaded archives without letting a member out of the folder it is extracted to.

An archive names its members' paths itself: ``../../x`` or ``/abs/x`` would land outside the
extraction folder ("tar slip"), a link member could point anywhere, a device or FIFO member has
no business in a data set, and declared sizes can add up to far more than the disk. So every
member is checked before anything is written (``check_members``), and the archive is refused
whole, with ``UnsafeArchive`` naming the first bad member, when one

* has an absolute path or a ``..`` component;
* is not a plain file or folder (a symbolic or hard link, a device, a FIFO);
* brings the declared total past ``MAX_EXTRACTED_BYTES``.

Tar archives are then extracted with ``tarfile``'s ``data`` filter where this Python has it
(3.10.12+, 3.11.4+: it refuses the same members and drops special permission bits), zips with
``zipfile`` (which writes at most each member's declared size, streamed).
"""

from __future__ import annotations

import stat
import tarfile
import zipfile
from pathlib import Path, PurePosixPath
from typing import Iterable

MAX_EXTRACTED_BYTES = 8 << 30  # the data sets fetched here extract to at most ~200 MB


class UnsafeArchive(ValueError):
    """An archive member would leave the extraction folder, is not a plain file or folder, or the
    members declare too many bytes; the message names the member."""


def unsafe_name(name: str) -> bool:
    """Whether a member path is absolute (``/x``, ``C:\\x``) or climbs (``..``)."""
    path = PurePosixPath(name.replace("\\", "/"))
    return path.is_absolute() or ".." in path.parts or (len(name) > 1 and name[1] == ":")


def check_members(members: Iterable[tuple[str, str, int]]) -> None:
    """Refuse (``UnsafeArchive``) the first member (name, kind: ``file``/``dir``/other, declared
    size) that is unsafe (module docstring)."""
    total = 0
    for name, kind, size in members:
        if unsafe_name(name):
            raise UnsafeArchive(f"member {name!r} would be written outside the extraction folder")
        if kind not in ("file", "dir"):
            raise UnsafeArchive(f"member {name!r} is a {kind}, not a plain file or folder")
        total += size
        if total > MAX_EXTRACTED_BYTES:
            raise UnsafeArchive(f"the members up to {name!r} declare more than {MAX_EXTRACTED_BYTES} bytes")


def _tar_kind(member: tarfile.TarInfo) -> str:
    if member.isfile() or member.isdir():
        return "file" if member.isfile() else "dir"
    return "link" if member.issym() or member.islnk() else "device or FIFO"


def extract_tar(archive: Path, folder: Path) -> None:
    """Extract a tar archive into ``folder`` after ``check_members`` passed on all its members."""
    with tarfile.open(archive) as tar:
        members = tar.getmembers()
        check_members((m.name, _tar_kind(m), m.size) for m in members)
        if hasattr(tarfile, "data_filter"):
            tar.extractall(folder, members, filter="data")
        else:  # pragma: no cover - older Pythons: the explicit check above is the filter
            tar.extractall(folder, members)


def _zip_kind(info: zipfile.ZipInfo) -> str:
    mode = info.external_attr >> 16
    if stat.S_ISLNK(mode):
        return "link"
    return "dir" if info.is_dir() else "file"


def extract_zip(archive: Path, folder: Path) -> None:
    """Extract a zip archive into ``folder`` after ``check_members`` passed on all its members."""
    with zipfile.ZipFile(archive) as source:
        infos = source.infolist()
        check_members((i.filename, _zip_kind(i), i.file_size) for i in infos)
        source.extractall(folder, infos)
