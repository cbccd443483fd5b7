"""The files of a suite folder's stages, by name (layout: ``metahyper.pipeline.runs``), and the readers of the
small ones: what ``metahyper status`` reads, without importing torch or the training code.

A marker that cannot be read (``read_marker``: truncated, edited into another JSON value, without
its config hash) raises ``metahyper.files.UnusableFileError`` naming the file and what to do.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from metahyper.atomic import write_text_atomic
from metahyper.config import load_yaml
from metahyper.files import UnusableFileError, read_json
from metahyper.meta.metrics_log import META_TRAIN_LOG, PRETRAIN_LOG

STAGES = ("pretrain", "meta_train", "evaluate")
SUITE_FILE = "suite.yaml"  # the suite as run, in the suite folder
MARKER, STAGE_CONFIG, FAILED = "done.json", "config.yaml", "failed.json"
TIME_FILE = "time.json"  # wall and CPU seconds of every process that worked on the stage, summed
RESULTS = "results.json"
STAGE_METRICS = {"pretrain": PRETRAIN_LOG, "meta_train": META_TRAIN_LOG}
"""The JSONL log of a stage's progress in its folder (one record per epoch or iteration)."""
NOT_OUTPUTS = (MARKER, STAGE_CONFIG, FAILED)  # a stage's own bookkeeping, not what it made


def stage_dir(out: Path, run: str, stage: str) -> Path:
    """The folder of one stage of one run in a suite folder."""
    return out / "runs" / run / stage


def stage_outputs(folder: Path) -> list[Path]:
    """The files the stage in ``folder`` wrote, by name: not hidden (locks, temporaries), not
    its marker, failure record or config (``NOT_OUTPUTS``)."""
    return [path for path in sorted(folder.iterdir())
            if path.is_file() and not path.name.startswith(".") and path.name not in NOT_OUTPUTS]


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
