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

Marker files that cannot be read (``metahyper.pipeline.stage_files.read_marker``: truncated, edited into
another JSON value) raise the same error, naming the file. Like ``stage_files``, this module
imports no torch: ``metahyper status`` checks stages with it.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Iterable

from metahyper.atomic import write_text_atomic
from metahyper.files import UnusableFileError, read_json, sha256_file
from metahyper.pipeline.stage_files import MARKER, read_marker, redo_hint, stage_outputs

ARTIFACTS = "artifacts"
EPISODES_MANIFEST = "manifest.json"


def stage_artifacts(out: Path, folder: Path, read: Iterable[Path] = ()) -> dict[str, str]:
    """Suite-folder-relative path -> SHA-256 of every file the stage in ``folder`` wrote
    (``stage_outputs``: not hidden, not its marker, failure record or config) and of each shared
    file in ``read``."""
    return {p.relative_to(out).as_posix(): sha256_file(p) for p in [*stage_outputs(folder), *sorted(set(read))]}


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
