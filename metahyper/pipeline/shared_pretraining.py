"""Runs that share one pretraining: the shots of one model and seed, and runs that name another
in ``pretrain_from`` (``metahyper.suite.expansion``). Their pretraining stages have one config
(hashed under the owner's name), so the first to finish does the work and the others link its
files (``share_pretraining``); ``metahyper.launch.local`` starts a sibling only once that stage
is done."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from metahyper.config import ConfigError, config_hash
from metahyper.pipeline.manifest import verify_stage
from metahyper.pipeline.stage_files import TIME_FILE, read_marker, stage_dir, stage_outputs
from metahyper.pipeline.stages import Workspace, stage_config
from metahyper.suite.config import SuiteConfig


def pretraining_siblings(suite: SuiteConfig, run: str) -> list[str]:
    """The other runs that share ``run``'s pretraining (the shots of one model and seed, and
    runs naming it in ``pretrain_from``: ``metahyper.suite.expansion``), the owner first."""

    def owner(name: str) -> str:
        return suite.runs[name].pretrain_from or name

    group = [name for name in suite.runs if owner(name) == owner(run) and name != run]
    return sorted(group, key=lambda name: name != owner(run))


def check_shared_pretraining(suite: SuiteConfig, run: str) -> None:
    """Refuse a run whose ``pretrain_from`` names a run of ``suite`` pretrained under other
    settings (a run folder's one-run suite does not hold that run: the whole suite was checked)."""
    owner = suite.runs[run].pretrain_from
    if owner is None or owner == run or owner not in suite.runs:
        return
    mine, theirs = stage_config(suite, run, "pretrain"), stage_config(suite, owner, "pretrain")
    differ = sorted(key for key in {*mine, *theirs} if mine.get(key) != theirs.get(key))
    if differ:
        name = suite.runs[run].report_name or run
        raise ConfigError(f"suite {suite.name!r}: runs.{name}.pretrain_from: run {owner!r} is pretrained with other "
                          f"settings ({', '.join(differ)} differ), so its pretraining cannot be shared")


def share_pretraining(ws: Workspace, run: str, folder: Path) -> str | None:
    """Link into ``folder`` the files of a finished pretraining of this very stage config (so
    the same weights) in another run folder of the suite folder: the owner's first, then any
    sibling's (``pretraining_siblings``; found on disk, so a worker that holds only its own run
    finds them too). Returns that run, or None when none has finished (then ``run`` pretrains
    itself). The stage config names the owner, so only the runs that share it can match. The
    links hold the owner's bytes, so this stage's own ``artifacts`` (``metahyper.pipeline.manifest``)
    record the same SHA-256 and verify like the owner's. The owner's ``time.json`` stays its
    own: this stage's time is the linking, so a report's compute sum counts the training once."""
    owner = ws.suite.runs[run].pretrain_from
    if owner is None:
        return None
    mine = config_hash(stage_config(ws.suite, run, "pretrain"))
    folders = sorted((ws.out / "runs").iterdir(), key=lambda path: (path.name != owner, path.name))
    for sibling in (path.name for path in folders if path.name != run):
        source = stage_dir(ws.out, sibling, "pretrain")
        marker = read_marker(source)
        if marker is not None and marker.get("config_hash") == mine:
            verify_stage(ws.out, source)  # the very files that stage finished with (metahyper.pipeline.manifest)
            for path in stage_outputs(source):
                if path.name != TIME_FILE:
                    link_or_copy(path, folder / path.name)
            return sibling
    return None


def link_or_copy(source: Path, dest: Path) -> None:
    """``dest`` as a hard link to ``source`` (a copy where links are not possible), replacing it."""
    dest.unlink(missing_ok=True)
    try:
        os.link(source, dest)
    except OSError:
        shutil.copy2(source, dest)
