"""A stage folder's markers: ``done.json`` (finished, under which config), ``config.yaml``
(the frozen stage config) and ``failed.json`` (the error that stopped it); the layout is
``metahyper.runs``'s docstring."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from metahyper.config import config_hash
from metahyper.stages import stage_config, stage_dir
from metahyper.suites import SuiteConfig
from metahyper.targets import evaluation_outdated

MARKER, STAGE_CONFIG, FAILED = "done.json", "config.yaml", "failed.json"


def read_marker(folder: Path) -> dict[str, Any] | None:
    """The ``done.json`` of a stage folder, or None when the stage has not finished."""
    path = folder / MARKER
    return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else None


def is_done(suite: SuiteConfig, out: Path, run: str, stage: str) -> bool:
    """Whether the stage finished under its current config (an evaluation that skipped an
    optional target whose data is there now is not: ``metahyper.targets.evaluation_outdated``)."""
    folder = stage_dir(out, run, stage)
    marker = read_marker(folder)
    if marker is None or marker["config_hash"] != config_hash(stage_config(suite, run, stage)):
        return False
    return stage != "evaluate" or not evaluation_outdated(suite, folder)
