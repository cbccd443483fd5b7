"""The files of a suite folder's stages, by name (layout: ``metahyper.runs``), and the readers of the
small ones: what ``metahyper status`` reads, without importing torch or the training code.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from metahyper.config import load_yaml
from metahyper.meta.metrics_log import META_TRAIN_LOG, PRETRAIN_LOG

STAGES = ("pretrain", "meta_train", "evaluate")
SUITE_FILE = "suite.yaml"  # the suite as run, in the suite folder
MARKER, STAGE_CONFIG, FAILED = "done.json", "config.yaml", "failed.json"
RESULTS = "results.json"
STAGE_METRICS = {"pretrain": PRETRAIN_LOG, "meta_train": META_TRAIN_LOG}


def stage_dir(out: Path, run: str, stage: str) -> Path:
    """The folder of one stage of one run in a suite folder."""
    return out / "runs" / run / stage


def read_marker(folder: Path) -> dict[str, Any] | None:
    """The ``done.json`` of a stage folder, or None when the stage has not finished."""
    path = folder / MARKER
    return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else None


def run_names(suite_dir: Path) -> list[str]:
    """Run folders of a suite output: in ``suite.yaml``'s order, then any others by name."""
    runs = suite_dir / "runs"
    folders = sorted(p.name for p in runs.iterdir() if p.is_dir()) if runs.is_dir() else []
    order = list(load_yaml(suite_dir / SUITE_FILE).get("runs", {})) if (suite_dir / SUITE_FILE).is_file() else []
    return [n for n in order if n in folders] + [n for n in folders if n not in order]
