"""A suite folder's report, rebuilt from what its runs left: ``report.md``, ``results.csv``,
``results.json`` and the figures (``metahyper.eval.report.write_report``).

It reads only finished stages (``done.json``), checks each against its manifest before use
(``metahyper.pipeline.manifest``), and the suite as saved (``suite.yaml``: title, data, published
numbers, provenance). ``metahyper.pipeline.runs.run_suite`` calls it when the evaluate stage ran;
``metahyper report`` and the launchers call it on a folder.
"""

from __future__ import annotations

import os
from contextlib import nullcontext
from pathlib import Path

from metahyper.config import ConfigError, load_yaml
from metahyper.eval.ensemble import seed_ensembles
from metahyper.eval.records import collect_environment
from metahyper.eval.report import write_report
from metahyper.files import read_json
from metahyper.meta.metrics_log import MetricsLog
from metahyper.meta.train import METRICS_NAME
from metahyper.outdir import shared_files_lock
from metahyper.pipeline.manifest import verify_stage
from metahyper.pipeline.stage_files import MARKER, RESULTS, STAGES, read_marker, redo_hint, run_names
from metahyper.pipeline.targets import read_skipped
from metahyper.suite.paper import paper_results
from metahyper.suite.provenance import setting_sources


def rebuild_report(suite_dir: str | os.PathLike, dest: str | os.PathLike | None = None) -> list[Path]:
    """Write report.md, results.csv, results.json and the figures of ``suite_dir`` from its run
    folders (finished evaluations, meta-training metrics, every stage's ``done.json`` for the
    compute time) and its ``suite.yaml`` (title, data, published numbers ``paper``, ``provenance``)
    into ``dest`` (default: ``suite_dir``; nothing is written anywhere
    else); returns the files written. Into the suite folder itself, it reads and writes under the
    shared-files lock, so the last report written covers every evaluation finished before it."""
    suite_dir = Path(suite_dir)
    dest = suite_dir if dest is None else Path(dest)
    with shared_files_lock(suite_dir) if dest.resolve() == suite_dir.resolve() else nullcontext():
        return _write_report(suite_dir, dest)


def _write_report(suite_dir: Path, dest: Path) -> list[Path]:
    """``rebuild_report``'s work, once it may write."""
    records, metrics, markers, notes, evaluated = [], {}, [], [], []
    for run in run_names(suite_dir):
        folder = suite_dir / "runs" / run
        markers += [m for m in (read_marker(folder / stage) for stage in STAGES) if m is not None]
        if read_marker(folder / "evaluate") is not None:
            verify_stage(suite_dir, folder / "evaluate")
            records += read_json(folder / "evaluate" / RESULTS, redo_hint(folder / "evaluate"), list)
            evaluated.append(folder / "evaluate")
            notes += read_skipped(folder / "evaluate")["notes"]
        verify_stage(suite_dir, folder / "meta_train", [METRICS_NAME])
        if (folder / "meta_train" / METRICS_NAME).is_file():
            metrics[run] = MetricsLog(folder / "meta_train" / METRICS_NAME).read()
    ensembles, ensemble_notes = seed_ensembles(evaluated)  # evaluation.seed_ensemble: rows of their own
    records, notes = records + ensembles, list(dict.fromkeys(notes + ensemble_notes))  # absent targets: every run
    if not records:
        skipped = "".join(f"; {note}" for note in notes)
        raise ConfigError(f"{suite_dir}: no finished evaluation (runs/*/evaluate/{MARKER}); nothing to report{skipped}")
    devices = [m.get("device", "?") for m in markers if m.get("stage") == "evaluate"]
    environment = collect_environment(", ".join(dict.fromkeys(devices)))
    suite_file = suite_dir / "suite.yaml"
    suite = load_yaml(suite_file) if suite_file.is_file() else None
    paper = (suite or {}).get("paper") or []
    setting_sources((suite or {}).get("provenance") or {}, f"{suite_file}: provenance")  # errors name the file
    return write_report(records, dest, metrics=metrics, environment=environment, notes=notes,
                        paper=paper_results(paper, f"{suite_file}: paper"), suite=suite, markers=markers)
