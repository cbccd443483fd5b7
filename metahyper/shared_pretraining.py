"""Runs that share one pretraining: the shots of one model and seed, and runs that name another
in ``pretrain_from`` (``metahyper.run_expansion``). Their pretraining stages have one config
(hashed under the owner's name), so the first to finish does the work and the others link its
files (``share_pretraining``); ``metahyper.launch.local`` starts a sibling only once that stage
is done."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from metahyper.config import ConfigError, config_hash
from metahyper.markers import FAILED, MARKER, STAGE_CONFIG, is_done
from metahyper.stages import Workspace, stage_config, stage_dir
from metahyper.suites import SuiteConfig


def pretraining_siblings(suite: SuiteConfig, run: str) -> list[str]:
    """The other runs that share ``run``'s pretraining (the shots of one model and seed, and
    runs naming it in ``pretrain_from``: ``metahyper.run_expansion``), the owner first."""

    def owner(name: str) -> str:
        return suite.runs[name].pretrain_from or name

    group = [name for name in suite.runs if owner(name) == owner(run) and name != run]
    return sorted(group, key=lambda name: name != owner(run))


def check_shared_pretraining(suite: SuiteConfig, run: str) -> None:
    """Refuse a run whose ``pretrain_from`` names a run pretrained under other settings."""
    owner = suite.runs[run].pretrain_from
    if owner is None or owner == run:
        return
    mine, theirs = stage_config(suite, run, "pretrain"), stage_config(suite, owner, "pretrain")
    differ = sorted(key for key in {*mine, *theirs} if mine.get(key) != theirs.get(key))
    if differ:
        name = suite.runs[run].report_name or run
        raise ConfigError(f"suite {suite.name!r}: runs.{name}.pretrain_from: run {owner!r} is pretrained with other "
                          f"settings ({', '.join(differ)} differ), so its pretraining cannot be shared")


def share_pretraining(ws: Workspace, run: str, folder: Path) -> str | None:
    """Link into ``folder`` the files of a sibling's finished pretraining (the same stage
    config, so the same weights: ``pretraining_siblings``); returns that sibling, or None when
    none has finished (then ``run`` pretrains itself)."""
    mine = config_hash(stage_config(ws.suite, run, "pretrain"))
    for sibling in pretraining_siblings(ws.suite, run):
        source = stage_dir(ws.out, sibling, "pretrain")
        if config_hash(stage_config(ws.suite, sibling, "pretrain")) == mine and is_done(ws.suite, ws.out, sibling,
                                                                                         "pretrain"):
            for path in sorted(source.iterdir()):
                if path.is_file() and path.name not in (MARKER, STAGE_CONFIG, FAILED) and not path.name.startswith("."):
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
