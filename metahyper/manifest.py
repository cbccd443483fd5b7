"""Tamper evidence for a suite folder: the SHA-256 of what each finished stage wrote, and of the episode sets.

A finished stage's ``done.json`` (``MARKER``, written last) holds, under ``artifacts``, the
SHA-256 of every file the stage wrote in its folder (checkpoints, metrics, ``results.json``,
``skipped.json``; not its ``config.yaml``, which its config hash protects) and of the shared
files it read (the episode sets its evaluation used), each keyed by its path relative to the
suite folder (``stage_artifacts``). Before a file of a finished stage is used (``report``
reading results and metrics, ``evaluate`` and ``meta-train`` loading a checkpoint, ``status``
showing the stage), ``verify_stage`` compares it with that record: a file that is missing or
differs stops the command with ``UnusableFileError`` naming it, and saying which folder to
delete to redo what it came from (every file here is derived: deleting rebuilds it). Stages
finished by a version without ``artifacts`` are not checked.

The fixed episode sets of ``OUT/episodes/`` are protected by ``OUT/episodes/manifest.json``
({file name: SHA-256}), written under the suite folder's lock with each set
(``record_episode_file``) and checked before a set is loaded (``check_episode_file``): the
hash a set carries inside itself proves nothing about an edited file that was re-hashed.

Marker files that cannot be read (``read_marker``: truncated, edited into another JSON value)
raise the same error, naming the file.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Iterable

from metahyper.atomic import write_text_atomic
from metahyper.files import UnusableFileError, read_json, sha256_file

MARKER, FAILED, STAGE_CONFIG = "done.json", "failed.json", "config.yaml"
ARTIFACTS = "artifacts"
EPISODES_MANIFEST = "manifest.json"
_NOT_ARTIFACTS = {MARKER, FAILED, STAGE_CONFIG}


def redo_hint(folder: Path) -> str:
    """What to do about a damaged file of the stage in ``folder``."""
    return f"delete {folder} (and the later stages' folders of that run) to redo that stage"


def read_marker(folder: Path) -> dict[str, Any] | None:
    """The ``done.json`` of a stage folder, or None when the stage has not finished;
    ``UnusableFileError`` naming it when it cannot be read or lacks its config hash."""
    path = folder / MARKER
    if not path.is_file():
        return None
    remedy = f"delete it to redo the end of that stage (it resumes from its checkpoint), or {redo_hint(folder)}"
    marker = read_json(path, remedy)
    if not isinstance(marker.get("config_hash"), str):
        raise UnusableFileError(f"{path} has no config_hash (edited?); {remedy}")
    return marker


def stage_artifacts(out: Path, folder: Path, read: Iterable[Path] = ()) -> dict[str, str]:
    """Suite-folder-relative path -> SHA-256 of every file the stage in ``folder`` wrote (not
    hidden, not its marker, failure record or config) and of each shared file in ``read``."""
    written = [p for p in sorted(folder.iterdir()) if p.is_file() and not p.name.startswith(".")
               and p.name not in _NOT_ARTIFACTS]
    return {p.relative_to(out).as_posix(): sha256_file(p) for p in [*written, *sorted(set(read))]}


def verify_stage(out: Path, folder: Path, names: Iterable[str] | None = None) -> None:
    """Check the files the finished stage in ``folder`` recorded (only those whose file name is
    in ``names``, when given) against their SHA-256; ``UnusableFileError`` naming the first
    that is missing or differs. A stage without a marker or without ``artifacts`` passes."""
    marker = read_marker(folder)
    recorded = (marker or {}).get(ARTIFACTS)
    if not isinstance(recorded, dict):
        return
    wanted = None if names is None else set(names)
    for relative, digest in recorded.items():
        path = out / relative
        if wanted is not None and path.name not in wanted:
            continue
        hint = episode_hint(path) if path.parent.name == "episodes" else redo_hint(folder)
        _check(path, digest, f"recorded in {folder / MARKER} when that stage finished", hint)


def _check(path: Path, expected: object, where: str, hint: str) -> None:
    if not path.is_file():
        raise UnusableFileError(f"{path} is missing (its SHA-256 is {where}); {hint}")
    if sha256_file(path) != expected:
        raise UnusableFileError(f"{path} differs from the SHA-256 {where}: it was edited, damaged or replaced; "
                                f"{hint}")


def episode_hint(path: Path) -> str:
    """What to do about a damaged episode set."""
    return (f"delete it and the evaluate stages that used it (runs/*/evaluate in {path.parent.parent}) to draw it "
            "again (the same seed draws the same episodes)")


def _episode_manifest(folder: Path) -> dict[str, str]:
    path = folder / EPISODES_MANIFEST
    if not path.is_file():
        return {}
    return read_json(path, f"delete it and every episode set in {folder}, with the evaluate stages that used "
                           "them (runs/*/evaluate), to draw them again")


def record_episode_file(path: Path) -> None:
    """Add the SHA-256 of the episode set ``path`` to its folder's manifest (hold the suite
    folder's lock: ``metahyper.outdir.shared_files_lock``)."""
    entries = {**_episode_manifest(path.parent), path.name: sha256_file(path)}
    write_text_atomic(path.parent / EPISODES_MANIFEST, json.dumps(entries, indent=1, sort_keys=True) + "\n")


def check_episode_file(path: Path) -> None:
    """``UnusableFileError`` naming ``path`` unless the episode set is the one its folder's
    manifest recorded when it was drawn."""
    expected = _episode_manifest(path.parent).get(path.name)
    if expected is None:
        raise UnusableFileError(f"{path} is not in {path.parent / EPISODES_MANIFEST}, so nothing vouches for it (it "
                                f"was not drawn here, or by an older version); {episode_hint(path)}")
    _check(path, expected, f"recorded in {path.parent / EPISODES_MANIFEST} when it was drawn", episode_hint(path))
