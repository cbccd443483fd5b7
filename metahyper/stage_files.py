"""The files of a suite folder's stages, by name (layout: ``metahyper.runs``), and the readers of the
small ones: what ``metahyper status`` reads, without importing torch or the training code.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from metahyper.atomic import write_text_atomic
from metahyper.config import load_yaml
from metahyper.meta.metrics_log import META_TRAIN_LOG, PRETRAIN_LOG

STAGES = ("pretrain", "meta_train", "evaluate")
SUITE_FILE = "suite.yaml"  # the suite as run, in the suite folder
MARKER, STAGE_CONFIG, FAILED = "done.json", "config.yaml", "failed.json"
TIME_FILE = "time.json"  # wall and CPU seconds of every process that worked on the stage, summed
RESULTS = "results.json"
STAGE_METRICS = {"pretrain": PRETRAIN_LOG, "meta_train": META_TRAIN_LOG}
"""The JSONL log of a stage's progress in its folder (one record per epoch or iteration)."""


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


def add_stage_time(folder: Path, seconds: float, cpu_seconds: float) -> dict[str, float]:
    """Adds one process's wall and CPU seconds to the stage's ``time.json`` (written atomically)
    and returns the totals (``seconds``, ``cpu_seconds``, ``processes``): a stage resumed after
    a stop is timed over all its processes, not the last one."""
    path = folder / TIME_FILE
    try:
        before = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        before = {}
    totals = {"seconds": round(float(before.get("seconds", 0.0)) + seconds, 3),
              "cpu_seconds": round(float(before.get("cpu_seconds", 0.0)) + cpu_seconds, 3),
              "processes": int(before.get("processes", 0)) + 1}
    write_text_atomic(path, json.dumps(totals) + "\n")
    return totals
