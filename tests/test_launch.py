"""Runs side by side in one suite folder: the ``--jobs`` pool against the sequential run (byte
for byte), two processes on two runs, a failed run, Ctrl-C, ``metahyper status``, bad options."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from cli_run import run_cli
from foreground import default_sigint
from holders import hold
from tiny_suites import SMOKE

from metahyper.launch.status import status_text
from metahyper.outdir import lock_holder

RUNS = ("wrn10_1", "hyper_wrn10_1")
LIMIT_S = 600  # a guard against a hang on a loaded machine, not a speed check
ENV = {**os.environ, "OMP_NUM_THREADS": "1"}


def _table(text: str) -> dict[tuple[str, str], tuple[str, str]]:
    """``metahyper status`` output as (run, stage) -> (state, detail)."""
    rows, run = {}, None
    for line in text.splitlines()[1:]:
        if line.startswith("    "):
            stage, rest = line.split(None, 1)
            state = next(s for s in ("not started", "done", "running", "failed", "stopped", "queued")
                         if rest.startswith(s))
            rows[run, stage] = (state, rest[len(state):].strip())
        elif line.startswith("  "):
            run = line.strip()
    return rows


def _same_results(out: Path, reference: Path) -> None:
    """The report's numbers and every run's final weights equal the reference's, byte for byte."""
    assert (out / "results.csv").read_bytes() == (reference / "results.csv").read_bytes()
    assert json.loads((out / "results.json").read_text())["results"] == \
        json.loads((reference / "results.json").read_text())["results"]
    for run in RUNS:
        final, expected = (torch.load(folder / "runs" / run / "meta_train" / "checkpoint.pt", weights_only=True)
                           for folder in (out, reference))
        assert all(torch.equal(final["model"][k], v) for k, v in expected["model"].items()), run


def test_jobs_2_equals_the_sequential_run_and_a_rerun_does_nothing(smoke_sequential, tmp_path, capsys):
    out = tmp_path / "out"
    status, stdout, stderr = run_cli(capsys, "run", "smoke", "--jobs", "2", "--threads", "1", "--out", str(out),
                                     *SMOKE)
    assert status == 0, stderr
    assert f"report: {out / 'report.md'}" in stdout
    _same_results(out, smoke_sequential)
    for run in RUNS:
        assert f"{run}: started on cpu (1 thread(s)); log: {out / 'runs' / run / 'run.log'}" in stderr
        assert f"[smoke] {run}: meta-train done" in (out / "runs" / run / "run.log").read_text()
        assert json.loads((out / "runs" / run / "evaluate" / "done.json").read_text())["threads"] == 1
    status, stdout, stderr = run_cli(capsys, "run", "smoke", "--jobs", "2", "--out", str(out), *SMOKE)
    assert status == 0 and "started" not in stderr and f"report: {out / 'report.md'}" in stdout


def test_two_processes_on_two_runs_of_one_folder_both_finish(smoke_sequential, tmp_path):
    out = tmp_path / "out"
    command = [sys.executable, "-m", "metahyper.cli", "run", "smoke", "--threads", "1", "--out", str(out), *SMOKE]
    procs = [subprocess.Popen([*command, run], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=ENV)
             for run in RUNS]
    results = [proc.communicate(timeout=LIMIT_S) for proc in procs]
    assert [proc.returncode for proc in procs] == [0, 0], [err for _, err in results]
    _same_results(out, smoke_sequential)  # the report written last covers both runs


def test_a_failed_run_does_not_stop_the_other_and_a_rerun_does_only_it(smoke_sequential, tmp_path, capsys):
    out = tmp_path / "out"
    damaged = out / "runs" / "hyper_wrn10_1" / "pretrain" / "pretrain_checkpoint.pt"
    damaged.parent.mkdir(parents=True)
    damaged.write_bytes(b"not a checkpoint")
    status, stdout, stderr = run_cli(capsys, "run", "smoke", "--jobs", "2", "--threads", "1", "--out", str(out),
                                     *SMOKE)
    log = out / "runs" / "hyper_wrn10_1" / "run.log"
    assert status == 1 and "1 run(s) failed" in stderr
    assert f"hyper_wrn10_1: exit status 2: CheckpointError: checkpoint {damaged} is damaged" in stderr
    assert f"earlier stages are intact; log: {log}" in stderr
    assert (out / "runs" / "wrn10_1" / "evaluate" / "done.json").is_file()  # the other run finished
    assert f"report: {out / 'report.md'}" in stdout
    state, detail = _table(status_text(out))["hyper_wrn10_1", "pretrain"]
    assert state == "failed" and detail.startswith(f"CheckpointError: checkpoint {damaged}")
    assert detail.endswith(f"intact; log: {log}")
    damaged.unlink()
    status, _, stderr = run_cli(capsys, "run", "smoke", "--jobs", "2", "--threads", "1", "--out", str(out), *SMOKE)
    assert status == 0, stderr
    assert "[smoke] hyper_wrn10_1: started" in stderr and "[smoke] wrn10_1: started" not in stderr
    _same_results(out, smoke_sequential)


def test_ctrl_c_stops_every_child_and_leaves_the_stages_resumable(tmp_path):
    out = tmp_path / "out"
    longer = [*SMOKE, "pretrain.epochs=100000"]
    parent = subprocess.Popen([sys.executable, "-m", "metahyper.cli", "run", "smoke", "--jobs", "2", "--out", str(out),
                               *longer], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=ENV,
                              preexec_fn=default_sigint)
    deadline = time.monotonic() + LIMIT_S
    folders = [out / "runs" / run / "pretrain" for run in RUNS]
    while not all((f / "pretrain_metrics.jsonl").is_file() for f in folders):  # both children are training
        assert parent.poll() is None and time.monotonic() < deadline, parent.communicate()
        time.sleep(0.1)
    children = [lock_holder(f)["pid"] for f in folders]
    parent.send_signal(signal.SIGINT)
    _, stderr = parent.communicate(timeout=LIMIT_S)
    assert parent.returncode == 130 and "interrupted; run the same command again to resume" in stderr
    for pid in children:
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)  # the child has ended (and was reaped: it is no zombie of ours)
    assert all(lock_holder(f) is None for f in folders)
    table = _table(status_text(out))
    for run in RUNS:
        state, detail = table[run, "pretrain"]
        assert state == "stopped" and detail.startswith("at epoch ")
        assert detail.endswith("; a rerun resumes it from its last checkpoint")


def test_status_of_every_kind_of_stage(smoke_sequential, tmp_path):
    out = tmp_path / "out"
    (out / "runs").mkdir(parents=True)
    (out / "suite.yaml").write_text((smoke_sequential / "suite.yaml").read_text())
    done = out / "runs" / "wrn10_1"
    (out / "runs" / "wrn10_1").mkdir()
    for stage in ("pretrain", "meta_train"):  # finished stages: their files match what their done.json recorded
        shutil.copytree(smoke_sequential / "runs" / "wrn10_1" / stage, done / stage)
    running = done / "evaluate"
    failed = out / "runs" / "hyper_wrn10_1" / "pretrain"
    failed.mkdir(parents=True)
    (failed / "failed.json").write_text(json.dumps({"error": "RuntimeError: out of memory", "log": "/x/run.log"}))
    meta = out / "runs" / "hyper_wrn10_1" / "meta_train"
    meta.mkdir()
    (meta / "config.yaml").write_text("meta_train: {iterations: 100}\n")
    records = "".join(json.dumps({"kind": "train", "iteration": i}) + "\n" for i in range(1, 41))
    (meta / "metrics.jsonl").write_text(records)
    started = time.time() - 100
    os.utime(meta / "metrics.jsonl", (started + 10, started + 10))  # 20 iterations in 10 s since it took the stage
    holders = [hold(meta, {"started": started, "from": 20}), hold(running)]
    try:
        text = status_text(out)
    finally:
        for holder in holders:
            holder.communicate("", timeout=60)
    markers = [json.loads((done / s / "done.json").read_text()) for s in ("pretrain", "meta_train")]
    times = [f"{m['seconds']:.1f} s (CPU {m['cpu_seconds']:.1f} s)" for m in markers]
    assert text.splitlines()[0] == f"{out}: 2 run(s)" and len(text.splitlines()) == 9  # no report line yet
    assert _table(text) == {
        ("wrn10_1", "pretrain"): ("done", f"{times[0]} on cpu"),
        ("wrn10_1", "meta-train"): ("done", f"{times[1]} on cpu"),
        ("wrn10_1", "evaluate"): ("running", f"pid {holders[1].pid}"),
        ("hyper_wrn10_1", "pretrain"): ("failed", "RuntimeError: out of memory; log: /x/run.log"),
        ("hyper_wrn10_1", "meta-train"): ("running",
                                          f"iteration 40/100, 2.00 it/s, ETA 0:00:30 (pid {holders[0].pid})"),
        ("hyper_wrn10_1", "evaluate"): ("not started", ""),
    }


@pytest.mark.parametrize("argv, message", [
    (["--jobs", "0"], "--jobs must be an integer >= 1, got '0'"),
    (["--jobs", "2", "--threads", "0"], "--threads must be an integer >= 1, got '0'"),
    (["--jobs", "2", "--devices", "cpu,cpu"], "--devices 'cpu,cpu' names cpu twice"),
    (["--devices", "cuda:99"], "--devices 'cuda:99': device='cuda:99'"),
    (["--devices", "cpu,"], "--devices 'cpu,': give device names separated by commas"),
    (["--jobs", "2", "--partition", "gpu"], "--partition is an option of --launcher slurm"),
    (["--launcher", "slurm", "--threads", "2"], "--threads: a SLURM job's threads are its --cpus"),
    (["--launcher", "slurm", "--mem", "0"], "--mem must be a number > 0, got '0'"),
    (["--launcher", "local", "launcher.slurm.gpus=-1"], "launcher.slurm: gpus must be >= 0, got -1"),
])
def test_bad_launch_options_exit_2_before_any_work(capsys, tmp_path, argv, message):
    status, _, stderr = run_cli(capsys, "run", "smoke", "--out", str(tmp_path / "out"), *argv, *SMOKE)
    assert status == 2 and message in stderr, stderr
    assert not (tmp_path / "out").exists()


def test_launch_options_are_refused_for_suites_without_stages(capsys, tmp_path):
    status, _, stderr = run_cli(capsys, "run", "babu-table1-bias-tiny", "--jobs", "2", "--out", str(tmp_path / "o"))
    assert status == 2 and "--jobs, --devices and --launcher run the runs of meta-learning suites" in stderr
    assert not (tmp_path / "o").exists()
