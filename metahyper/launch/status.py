"""What a suite folder's runs are doing, read from their folders alone (``metahyper status OUT``).

Each stage of each run is in one of these states (checked in this order):

* ``done``: its ``done.json`` exists (wall and CPU seconds, summed over the processes that
  worked on it, and device from it);
* ``damaged`` (``metahyper status`` only, which checks what finished stages recorded,
  ``metahyper.pipeline.manifest``): its ``done.json`` cannot be read, or a file it recorded is missing
  or differs from its SHA-256; the detail names the file and what to delete to redo it;
* ``running``: a process holds its lock (``metahyper.outdir.lock_holder``: pid, host, SLURM
  job); its metrics log gives the epoch or iteration, and the lock's start time and the
  iteration the process started from give the rate (over the iterations this process did, up
  to the time of the log's last record) and the ETA;
* ``failed``: its ``failed.json`` names the error and the log file;
* ``stopped``: it started (its ``config.yaml`` exists) but no process holds it: killed or
  interrupted; a rerun resumes it from its checkpoint;
* ``not started`` (``queued``: a launcher submitted its run as a SLURM job, ``LAUNCH_FILE``).

Nothing is written, and no lock is taken beyond a probe released at once.
"""

from __future__ import annotations

import datetime
import json
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from metahyper.config import ConfigError, load_yaml
from metahyper.files import UnusableFileError
from metahyper.meta.metrics_log import last_record
from metahyper.outdir import describe_holder, lock_holder
from metahyper.pipeline.manifest import verify_stage
from metahyper.pipeline.stage_files import (FAILED, STAGE_CONFIG, STAGE_METRICS, STAGES, SUITE_FILE, read_marker,
                                            run_names, stage_dir)

LAUNCH_FILE = "launch.json"  # what a launcher submitted: {"launcher", "jobs": {run: job id}, "report_job"}
UNITS = {"pretrain": "epoch", "meta_train": "iteration"}


@dataclass(frozen=True)
class StageStatus:
    """One stage of one run: ``state`` (module docstring) and the details that go with it."""

    stage: str
    state: str
    detail: str = ""


def read_json(path: Path) -> dict[str, Any] | None:
    """A JSON object file, or None when it is missing or unreadable (written atomically, so a
    reader sees a whole file or none)."""
    try:
        value = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return value if isinstance(value, dict) else None


def duration(seconds: float) -> str:
    """``1:02:03`` (``2 days, 1:02:03`` beyond a day)."""
    return str(datetime.timedelta(seconds=round(seconds)))


def stage_total(folder: Path, stage: str) -> int | None:
    """Epochs or iterations the stage runs to (from its frozen ``config.yaml``)."""
    try:
        config = load_yaml(folder / STAGE_CONFIG)
    except ConfigError:
        return None
    key = {"pretrain": ("pretrain", "epochs"), "meta_train": ("meta_train", "iterations")}.get(stage)
    value = config.get(key[0], {}).get(key[1]) if key else None
    return value if isinstance(value, int) else None


def progress(folder: Path, stage: str, holder: dict[str, Any]) -> str:
    """``iteration 40/100, 2.31 it/s, ETA 0:00:26`` of a running stage (as much as is known)."""
    if stage not in STAGE_METRICS:
        return ""
    log, unit, total = folder / STAGE_METRICS[stage], UNITS[stage], stage_total(folder, stage)
    record = last_record(log)
    if record is None or "iteration" not in record:
        return "starting"
    done = int(record["iteration"])
    parts = [f"{unit} {done}/{total if total is not None else '?'}"]
    start, first = holder.get("started"), int(holder.get("from", 0) or 0)
    elapsed = log.stat().st_mtime - start if isinstance(start, (int, float)) else 0.0
    if done > first and elapsed > 0:
        rate = (done - first) / elapsed
        parts.append(f"{rate:.2f} it/s" if stage == "meta_train" else f"{1 / rate:.1f} s/epoch")
        if total is not None:
            parts.append(f"ETA {duration(max(total - done, 0) / rate)}")
    return ", ".join(parts)


def stage_status(out: Path, run: str, stage: str, queued: str | None = None, verify: bool = False) -> StageStatus:
    """The state of one stage (module docstring); ``queued`` names the SLURM job of its run;
    ``verify`` checks a finished stage's files (``damaged`` when one fails)."""
    folder = stage_dir(out, run, stage)
    try:
        marker = read_marker(folder)
        if marker is not None and verify:
            verify_stage(out, folder)
    except UnusableFileError as error:
        if not verify:
            raise
        return StageStatus(stage, "damaged", str(error))
    if marker is not None:
        cpu = f" (CPU {marker['cpu_seconds']:.1f} s)" if "cpu_seconds" in marker else ""
        return StageStatus(stage, "done", f"{marker.get('seconds', 0):.1f} s{cpu} on {marker.get('device', '?')}")
    holder = lock_holder(folder)
    if holder is not None:
        done = progress(folder, stage, holder)
        return StageStatus(stage, "running", f"{done} ({describe_holder(holder)})" if done else describe_holder(holder))
    failed = read_json(folder / FAILED)
    if failed is not None:
        where = f"; log: {failed['log']}" if failed.get("log") else ""
        return StageStatus(stage, "failed", f"{failed.get('error', '?').rstrip('.')}{where}")
    if (folder / STAGE_CONFIG).is_file():
        record = last_record(folder / STAGE_METRICS[stage]) if stage in STAGE_METRICS else None
        at = f"at {UNITS[stage]} {record['iteration']}; " if record and "iteration" in record else ""
        return StageStatus(stage, "stopped", f"{at}a rerun resumes it from its last checkpoint")
    if queued:
        return StageStatus(stage, "queued", f"SLURM job {queued}")
    return StageStatus(stage, "not started")


def suite_runs(out: Path) -> tuple[list[str], list[str]]:
    """(the runs ``suite.yaml`` lists, in its order; the run folders it no longer lists, e.g. the
    ``-s1`` runs after ``seeds=[0, 1]`` became ``[0]``)."""
    listed = list(load_yaml(out / SUITE_FILE).get("runs", {}))
    return listed, [run for run in run_names(out) if run not in listed]


def check_suite_folder(out: Path) -> None:
    """Refuse a folder that ``metahyper run`` did not write, saying what one holds (and naming the
    suite folders inside it, e.g. for ``metahyper status runs``)."""
    if (out / SUITE_FILE).is_file():
        return
    inside = sorted(str(p.parent) for p in out.glob(f"*/{SUITE_FILE}")) if out.is_dir() else []
    hint = f"; the suite folders in it: {', '.join(inside)}" if inside else ""
    raise ConfigError(f"{out} is not a suite folder: a suite folder (the --out of `metahyper run`) holds "
                      f"{SUITE_FILE} and runs/<run>/<stage>/ folders{hint}")


def run_status(out: Path, run: str, queued: str | None = None, verify: bool = False) -> list[StageStatus]:
    """The status of each stage of ``run`` (``verify``: see ``stage_status``)."""
    return [stage_status(out, run, stage, queued, verify) for stage in STAGES]


def run_lines(out: Path, run: str, queued: str | None = None, damaged: list[str] | None = None) -> list[str]:
    """The run's name, then a line per stage, finished ones checked against what they recorded
    (``stage_status``'s ``verify``); the detail of each damaged stage is appended to ``damaged``
    when given."""
    statuses = run_status(out, run, queued, verify=True)
    if damaged is not None:
        damaged += [s.detail for s in statuses if s.state == "damaged"]
    return [f"  {run}"] + [f"    {s.stage.replace('_', '-'):<11} {s.state:<12} {s.detail}".rstrip() for s in statuses]


def current(stages: list[StageStatus]) -> str:
    """One line for a run: its first unfinished stage, or ``done``."""
    for status in stages:
        if status.state != "done":
            detail = f": {status.detail}" if status.detail else ""
            return f"{status.stage.replace('_', '-')} {status.state}{detail}"
    return "done"


def status_text(out: str | os.PathLike, damaged: list[str] | None = None) -> str:
    """The report of ``metahyper status OUT``: every run's stages (finished ones checked against
    what they recorded), then the report file. The detail of each damaged stage is appended to
    ``damaged`` when given."""
    out = Path(out)
    check_suite_folder(out)
    launch = read_json(out / LAUNCH_FILE) or {}
    jobs = launch.get("jobs", {})
    runs, retired = suite_runs(out)
    lines = [f"{out}: {len(runs)} run(s)"]
    for run in runs:
        lines += run_lines(out, run, jobs.get(run), damaged)
    if retired:
        lines.append(f"not in the suite any more ({SUITE_FILE} no longer lists them; their folders are kept):")
        for run in retired:
            lines += run_lines(out, run, damaged=damaged)
    report = out / "report.md"
    if report.is_file():
        written = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(report.stat().st_mtime))
        lines.append(f"report: {report} (written {written})")
    elif launch.get("report_job"):
        lines.append(f"report: to be built by SLURM job {launch['report_job']} when the runs end")
    return "\n".join(lines)
