"""Runs and suites: pretrain -> meta-train -> evaluate, with artifacts, skipping and resume.

Layout of a suite's output folder (``run_suite(suite, out)``)::

    OUT/.lock                              held (flock) while a process writes the shared files below
    OUT/suite.yaml                         the suite as run (overrides applied, data roots resolved)
    OUT/episodes/<target>-<way>w<shot>s-q<query>-n<n>-seed<seed>[-within-<grouping>].npz
                                           fixed, hashed episode sets (the run's episodes.eval_way)
    OUT/episodes/manifest.json             the SHA-256 of each episode set, checked before it is loaded
    OUT/runs/<run>/config.yaml             the run's own config (a one-run suite; reusable)
    OUT/runs/<run>/<stage>/config.yaml     the frozen stage config (hashed; chains the stage before)
    OUT/runs/<run>/<stage>/.lock           held (flock) by the process working on the stage; names it
    OUT/runs/<run>/<stage>/time.json       wall and CPU seconds, summed over the processes that worked on it
    OUT/runs/<run>/<stage>/done.json       written atomically LAST: the stage is finished, with time.json's sums
                                           and the SHA-256 of its files and of the episode sets it used
                                           (metahyper.pipeline.manifest)
    OUT/runs/<run>/<stage>/failed.json     the error that stopped the stage (removed when it starts again)
    OUT/runs/<run>/pretrain/               pretrain_checkpoint.pt, pretrained.pt, pretrain_metrics.jsonl
    OUT/runs/<run>/meta_train/             checkpoint.pt, metrics.jsonl
    OUT/runs/<run>/evaluate/results.json   one result record per target x shot x method
    OUT/runs/<run>/evaluate/skipped.json   targets and predictors it skipped, and why (``metahyper.pipeline.targets``)
    OUT/report.md, results.csv, results.json, *.png   (``metahyper.pipeline.report.rebuild_report``)

A stage whose ``done.json`` holds the hash of its current config is skipped; an unfinished
one resumes from its checkpoint (pretraining per epoch, meta-training per checkpoint). A folder
written under a different config is refused up front rather than mixed. Every data root, data
option, model, episode setting and baseline is checked before the first stage starts. What
each stage does is ``metahyper.pipeline.stages``.

Several processes may work in one suite folder at once, each on its own runs: a stage is
locked by the process working on it (a second process asking for it exits 2 naming the
holder: pid, host, SLURM job), and the files the runs share (``suite.yaml``, the runs'
``config.yaml``, the episode sets, the report) are written atomically under ``OUT/.lock``, one
process at a time (``metahyper.outdir``). ``metahyper.launch`` starts such processes: a local
pool (``--jobs``) or SLURM jobs (``--launcher slurm``).
"""

from __future__ import annotations

import dataclasses
import json
import os
import socket
import time
from contextlib import nullcontext
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable, Iterable

import torch

from metahyper.atomic import remove_stale_temporaries, write_text_atomic
from metahyper.config import ConfigError, config_hash, load_yaml, save_yaml
from metahyper.data import ImageStore
from metahyper.data.episodes import check_episode_args, class_groups
from metahyper.meta.distributed import world
from metahyper.meta.metrics_log import last_record
from metahyper.outdir import FolderLock, busy_error, check_writable, lock_holder, shared_files_lock, slurm_job_id
from metahyper.pipeline.manifest import ARTIFACTS, stage_artifacts
from metahyper.pipeline.report import rebuild_report
from metahyper.pipeline.shared_pretraining import check_shared_pretraining, share_pretraining
from metahyper.pipeline.stage_files import (FAILED, MARKER, STAGE_CONFIG, STAGE_METRICS, STAGES, TIME_FILE,
                                            add_stage_time, read_marker, stage_dir)
from metahyper.pipeline.stages import (STAGE_RUNNERS, Workspace, baseline_predictor, device_description, eval_shots,
                                       log, resolve_device, stage_config)
from metahyper.pipeline.targets import absent_targets, data_episodes, evaluation_outdated
from metahyper.suite.config import SuiteConfig
from metahyper.suite.data_paths import resolve_data_paths


# --- stage folders and markers ---------------------------------------------------------------------------


def is_done(suite: SuiteConfig, out: Path, run: str, stage: str) -> bool:
    """Whether the stage finished under its current config (an evaluation that skipped an
    optional target whose data is there now is not: ``metahyper.pipeline.targets.evaluation_outdated``)."""
    folder = stage_dir(out, run, stage)
    marker = read_marker(folder)
    if marker is None or marker["config_hash"] != config_hash(stage_config(suite, run, stage)):
        return False
    return stage != "evaluate" or not evaluation_outdated(suite, folder)


def check_stage_folder(suite: SuiteConfig, out: Path, run: str, stage: str) -> None:
    """Refuse a stage folder written under another config (it would be mixed or skipped)."""
    folder = stage_dir(out, run, stage)
    if not (folder / STAGE_CONFIG).is_file():
        return
    old, new = config_hash(load_yaml(folder / STAGE_CONFIG)), config_hash(stage_config(suite, run, stage))
    if old != new:
        raise ConfigError(
            f"{folder} holds the {stage} stage of run {run!r} under a different config (hash {old[:12]}, now "
            f"{new[:12]}): the suite, its overrides or an earlier stage changed. Use a new --out folder, or delete "
            f"{folder} (and the later stages of that run) to redo it."
        )


def now_utc() -> str:
    """The time stamp markers carry."""
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def stage_clock() -> tuple[float, float]:
    """(wall, CPU) seconds of this process, from which a stage's time is taken."""
    return time.perf_counter(), time.process_time()


def elapsed_since(started: tuple[float, float]) -> tuple[float, float]:
    """(wall, CPU) seconds since ``started`` (a ``stage_clock()``)."""
    wall, cpu = stage_clock()
    return wall - started[0], cpu - started[1]


def finish_stage(ws: Workspace, run: str, stage: str, totals: dict[str, float],
                 shared_from: str | None = None) -> None:
    """Write the ``done.json`` marker (atomically; the last file a stage writes) with the stage's
    time summed over every process that worked on it (``totals``: ``add_stage_time``) and the
    SHA-256 of the stage's files and of the shared files it read (``metahyper.pipeline.manifest``).
    ``threads``: CPU results depend on the thread count (reductions run in another order).
    ``shared_from``: the run whose finished stage this one links (``share_pretraining``)."""
    folder = stage_dir(ws.out, run, stage)
    marker = {"stage": stage, "run": run, "config_hash": config_hash(stage_config(ws.suite, run, stage)),
              "finished_at": now_utc(), **totals, "device": device_description(ws.device),
              "threads": torch.get_num_threads(), ARTIFACTS: stage_artifacts(ws.out, folder, ws.read_files)}
    if shared_from is not None:
        marker["shared_from"] = shared_from
    write_text_atomic(folder / MARKER, json.dumps(marker, indent=2) + "\n")


def record_stop(folder: Path, run: str, stage: str, error: BaseException, elapsed: tuple[float, float],
                log_file: Path | None) -> None:
    """What a stopped stage leaves: this process's time (``add_stage_time``: it counts on resume)
    and, for an error (not Ctrl-C or a requeue), ``failed.json`` with the error, who ran it and
    its log file. Both when they can be written: on a full disk the error itself is what the
    user sees."""
    record = {"stage": stage, "run": run, "error": f"{type(error).__name__}: {error}", "failed_at": now_utc(),
              "pid": os.getpid(), "host": socket.gethostname(), "job": slurm_job_id(),
              "log": None if log_file is None else str(log_file)}
    try:
        add_stage_time(folder, *elapsed)
        if isinstance(error, Exception):
            write_text_atomic(folder / FAILED, json.dumps(record, indent=2) + "\n")
    except (OSError, ValueError):
        pass


def logged_iteration(folder: Path, stage: str) -> int:
    """The last epoch or iteration in the stage's metrics log (0 when none)."""
    record = last_record(folder / STAGE_METRICS[stage]) if stage in STAGE_METRICS else None
    return int(record.get("iteration", 0)) if record else 0


# --- suites ----------------------------------------------------------------------------------------------


def _checked(where: str, check: Callable[[], Any]) -> Any:
    """Run ``check``; its ``ValueError`` becomes a ``ConfigError`` naming ``where``."""
    try:
        return check()
    except ConfigError:
        raise
    except ValueError as error:
        raise ConfigError(f"{where}: {error}") from None


def check_run(ws: Workspace, run: str, source: ImageStore, targets: dict[str, ImageStore]) -> None:
    """Model, baselines and every episode setting of ``run`` fit the data, groupings included
    (raises ``ConfigError``)."""
    spec, ev, name, data = ws.suite.runs[run], ws.suite.evaluation, ws.suite.name, ws.suite.data
    way, eval_way, channels = spec.episodes.way, spec.episodes.eval_way_or_way, source.image_shape[0]
    _checked(f"suite {name!r}: runs.{run}.episodes (data)",
             lambda: check_episode_args(source, way, spec.episodes.shot, spec.episodes.query))
    _check_groups(f"suite {name!r}: runs.{run}.episodes.groups", source, spec.episodes.groups, way)
    check_shared_pretraining(ws.suite, run)
    model = ws.model(run, channels)
    for method, options in ev.baselines.items():
        baseline_predictor(ws.suite, method, model, options)
    checks = [("data.val_split", ws.validation(), spec.episodes.shot, "data.val_groups", data.val_groups)] \
        if data.val_split else []
    checks += target_checks(ws, targets, eval_shots(ws.suite, run))
    for where, store, shot, groups_field, groups in checks:
        if store.image_shape[0] != channels:
            raise ConfigError(f"suite {name!r}: {where} has {store.image_shape[0]}-channel images, "
                              f"the source {channels}")
        if shot is None:  # a data set's own episodes
            continue
        _checked(f"suite {name!r}: {where} with runs.{run} ({eval_way}-way {shot}-shot, query {ev.query})",
                 lambda: check_episode_args(store, eval_way, shot, ev.query))
        _check_groups(f"suite {name!r}: {groups_field}", store, groups, eval_way, run)


def target_checks(ws: Workspace, targets: dict[str, ImageStore], shots: tuple[int, ...]) -> list[tuple]:
    """(field, store, shot, groups field, groups) of every target and shot of ``shots`` to check against a run;
    a target whose data set defines its own episodes has shot None, its episodes are built here
    (on this store) as the check, and it refuses ``groups``."""
    checks, name = [], ws.suite.name
    for target, store in targets.items():
        fixed, spec = data_episodes(ws.suite, target), ws.suite.targets[target]
        if fixed is None:
            checks += [(f"targets.{target}", store, shot, f"targets.{target}.groups", spec.groups)
                       for shot in shots]
            continue
        if spec.groups is not None:
            raise ConfigError(f"suite {name!r}: targets.{target}.groups = {spec.groups!r}, but {spec.dataset} defines "
                              f"its own episodes; remove targets.{target}.groups")
        _checked(f"suite {name!r}: targets.{target}", lambda: fixed(store))
        checks.append((f"targets.{target}", store, None, None, None))
    return checks


def _check_groups(where: str, store: ImageStore, groups: str | None, way: int, run: str | None = None) -> None:
    """``groups`` (a grouping's name, or None) applies to ``store`` and has a group of ``way``
    classes (for the episodes of ``run``, when the setting is shared by every run)."""
    if groups is not None:
        used = "" if run is None else f" with runs.{run}"
        _checked(f"{where} = {groups!r}{used} ({way}-way)", lambda: class_groups(store, groups, way))


def check_suite(ws: Workspace, runs: list[str], stages: Iterable[str]) -> set[tuple[str, str]]:
    """Everything that can be checked before work starts; returns the (run, stage) pairs to do."""
    for run in runs:
        for stage in STAGES:
            check_stage_folder(ws.suite, ws.out, run, stage)
    pending = {(run, stage) for run in runs for stage in stages if not is_done(ws.suite, ws.out, run, stage)}
    for run, stage in sorted(pending):
        before = STAGES[STAGES.index(stage) - 1] if stage != "pretrain" else None
        if before and before not in stages and not is_done(ws.suite, ws.out, run, before):
            raise ConfigError(f"run {run!r}: the {before} stage is not finished in {ws.out}; run "
                              f"`metahyper {before.replace('_', '-')}` (or `metahyper run`) for it first")
    if world()[0] == 0:
        check_unlocked(ws.out, pending)
    if pending:
        source, absent = ws.source(), absent_targets(ws.suite)
        targets = {} if not any(s == "evaluate" for _, s in pending) else {
            t: ws.store(f"targets.{t}", spec) for t, spec in ws.suite.targets.items() if t not in absent}
        for run in runs:
            check_run(ws, run, source, targets)
    return pending


def check_unlocked(out: Path, pending: Iterable[tuple[str, str]]) -> None:
    """Refuse, before any work, stages that another process is working on (naming it)."""
    for run, stage in sorted(pending):
        holder = lock_holder(stage_dir(out, run, stage))
        if holder is not None:
            raise busy_error("stage folder", stage_dir(out, run, stage), holder)


def run_stage(ws: Workspace, run: str, stage: str, pending: bool, log_file: Path | None = None) -> None:
    """Run one stage into its folder (config copy first, marker last) holding its lock, or skip
    a finished one. A stage that raises leaves ``failed.json`` (naming ``log_file``)."""
    prefix = f"[{ws.suite.name}] {run}: {stage.replace('_', '-')}"
    folder, rank0 = stage_dir(ws.out, run, stage), world()[0] == 0
    lock = FolderLock(folder, "stage folder", info={"from": logged_iteration(folder, stage)}) if pending and rank0 \
        else nullcontext()
    with lock:
        if not pending or (rank0 and is_done(ws.suite, ws.out, run, stage)):  # or another process finished it
            log(f"{prefix} finished before, skipped")
            return
        log(f"{prefix} ...")
        started = stage_clock()
        if rank0:
            if (folder / MARKER).exists():  # a finished stage done again, from the start: a new count
                (folder / TIME_FILE).unlink(missing_ok=True)
            (folder / MARKER).unlink(missing_ok=True)  # a stage being (re)done is not finished
            (folder / FAILED).unlink(missing_ok=True)
            remove_stale_temporaries(folder)  # left by a process killed mid-write
            save_yaml(stage_config(ws.suite, run, stage), folder / STAGE_CONFIG)
        ws.read_files = set()
        try:
            shared = share_pretraining(ws, run, folder) if stage == "pretrain" and rank0 else None
            if shared is None:
                STAGE_RUNNERS[stage](ws, run, folder)
            else:
                log(f"{prefix}: the pretraining of {shared} (the same model and seed), linked")
        except BaseException as error:  # stopped (an error, Ctrl-C, a requeue): its time counts on resume
            if rank0:
                record_stop(folder, run, stage, error, elapsed_since(started), log_file)
            raise
        wall, cpu = elapsed_since(started)
        totals = add_stage_time(folder, wall, cpu) if rank0 else {"seconds": wall, "processes": 1}
        if rank0:
            finish_stage(ws, run, stage, totals, shared_from=shared)
    resumed = f" (summed over {totals['processes']} processes: it was resumed)" if totals["processes"] > 1 else ""
    log(f"{prefix} done in {totals['seconds']:.1f} s{resumed}")


@dataclasses.dataclass
class Plan:
    """A checked suite and what it still has to do in its folder (``plan_suite``)."""

    ws: Workspace
    runs: list[str]
    stages: list[str]
    pending: set[tuple[str, str]]

    def unfinished(self) -> list[str]:
        """The runs with a stage to do, in suite order."""
        return [run for run in self.runs if any((run, stage) in self.pending for stage in self.stages)]


def plan_suite(suite: SuiteConfig, out: str | os.PathLike, *, runs: Iterable[str] | None = None,
               stages: Iterable[str] = STAGES, progress: bool | None = None, device: str | None = None) -> Plan:
    """Check everything about running ``stages`` of ``runs`` (default: all) of ``suite`` in
    ``out`` before any work (data roots, options, models, episode settings, stage folders, stages
    another process holds); ``device`` replaces the suite's (it is in no config hash)."""
    suite.logging.check()
    check_writable(out, "output folder (--out)")
    device_ = resolve_device(device or suite.device)
    suite, stages = resolve_data_paths(suite), [s for s in STAGES if s in set(stages)]
    names = list(suite.runs) if runs is None else [run for name in runs for run in suite.select(name)]
    ws = Workspace(suite, Path(out).resolve(), device_, progress)
    plan = Plan(ws, names, stages, check_suite(ws, names, stages))
    if "evaluate" in stages:
        for note in absent_targets(suite).values():
            log(f"[{suite.name}] {note}")
    return plan


def write_suite_files(plan: Plan, whole: bool) -> None:
    """``suite.yaml`` (for the ``whole`` suite, or when missing) and the runs' ``config.yaml``,
    under the shared-files lock."""
    suite, out = plan.ws.suite, plan.ws.out
    with shared_files_lock(out):
        for folder in (out, out / "episodes", *(out / "runs" / name for name in plan.runs)):
            remove_stale_temporaries(folder)  # left by a process killed while writing a shared file
        if whole or not (out / "suite.yaml").exists():
            save_yaml(suite, out / "suite.yaml")
        for name in plan.runs:
            save_yaml(suite.only(name), out / "runs" / name / "config.yaml")


def run_suite(suite: SuiteConfig, out: str | os.PathLike, *, runs: Iterable[str] | None = None,
              stages: Iterable[str] = STAGES, progress: bool | None = None, device: str | None = None,
              report: bool = True, log_file: Path | None = None) -> list[Path]:
    """Run ``stages`` of ``runs`` (default: all) of ``suite`` into ``out``; returns the report
    files when the evaluate stage ran and ``report`` is set (the report covers every evaluated
    run in ``out``). A run name of a seeded run (``metahyper.suite.expansion.expand_runs``) stands for
    all its seeds.

    Checks everything first (``plan_suite``); finished stages are skipped, unfinished ones
    resume. Each stage is locked while it runs (module docstring), so other processes may work
    on other runs of ``out`` meanwhile. ``progress`` defaults to "stderr is a terminal";
    ``log_file`` is named in the ``failed.json`` of a stage that fails.
    """
    plan = plan_suite(suite, out, runs=runs, stages=stages, progress=progress, device=device)
    rank0 = world()[0] == 0
    if rank0:
        write_suite_files(plan, whole=runs is None)
    for name in plan.runs:
        for stage in plan.stages:
            run_stage(plan.ws, name, stage, (name, stage) in plan.pending, log_file)
    return rebuild_report(plan.ws.out) if report and "evaluate" in plan.stages and rank0 else []
