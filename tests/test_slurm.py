"""``--launcher slurm`` through submitit: the missing extra, the job array and report job that a
stand-in ``sbatch`` is asked for, those jobs run as SLURM would run them, and submitit's local
executor running the jobs with one preempted mid meta-training, requeued and resumed to the
numbers of the sequential run."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from cli_run import run_cli
from tiny_suites import SMOKE

from metahyper.launch.slurm import submit_suite
from metahyper.launch.status import LAUNCH_FILE, status_text
from metahyper.pipeline.report import rebuild_report
from metahyper.pipeline.runs import plan_suite
from metahyper.suite.config import load_suite
from metahyper.suite.launcher import SlurmConfig

submitit = pytest.importorskip("submitit", reason="the slurm extra (pip install 'metahyper[slurm]') is not installed")

TESTS = Path(__file__).resolve().parent
LIMIT_S = 600  # a guard against a hang on a loaded machine, not a speed check
SBATCH = """#!/bin/sh
# stand-in sbatch: records its arguments and the job script, answers as sbatch does
n=$(ls "$SBATCH_RECORD" | wc -l)
{ echo "$@"; cat "$1"; } > "$SBATCH_RECORD/call$n.txt"
echo "Submitted batch job $((4242 + n))"
"""


@pytest.fixture
def slurm_path(tmp_path, monkeypatch) -> Path:
    """``sbatch`` (recording into the returned folder) and ``srun`` stand-ins first on PATH."""
    bin_dir, record = tmp_path / "bin", tmp_path / "sbatch-calls"
    bin_dir.mkdir()
    record.mkdir()
    (bin_dir / "sbatch").write_text(SBATCH)
    (bin_dir / "srun").write_text("#!/bin/sh\nexit 0\n")
    for tool in bin_dir.iterdir():
        tool.chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.setenv("SBATCH_RECORD", str(record))
    return record


def _same_numbers(out: Path, reference: Path, run: str) -> None:
    """``run``'s final weights and metrics log equal the reference's, byte for byte."""
    final, expected = (torch.load(f / "runs" / run / "meta_train" / "checkpoint.pt", weights_only=True)
                       for f in (out, reference))
    assert final["iteration"] == expected["iteration"]
    assert all(torch.equal(final["model"][k], v) for k, v in expected["model"].items())
    assert (out / "runs" / run / "meta_train" / "metrics.jsonl").read_bytes() == \
        (reference / "runs" / run / "meta_train" / "metrics.jsonl").read_bytes()


def test_a_missing_submitit_exits_2_naming_the_extra(capsys, tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "submitit", None)  # import submitit raises ImportError
    status, _, stderr = run_cli(capsys, "run", "smoke", "--launcher", "slurm", "--out", str(tmp_path / "o"), *SMOKE)
    assert status == 2 and "install it with: pip install 'metahyper[slurm]'" in stderr
    assert not (tmp_path / "o").exists()


def test_no_slurm_commands_exit_2(capsys, tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path))
    status, _, stderr = run_cli(capsys, "run", "smoke", "--launcher", "slurm", "--out", str(tmp_path / "o"), *SMOKE)
    assert status == 2 and "--launcher slurm: sbatch and srun not found on PATH" in stderr
    assert not (tmp_path / "o").exists()


def _job_env(job: str, task: str | None = None) -> dict[str, str]:
    """What SLURM and srun set for one task of a job (array task ``task`` of job ``job``)."""
    env = {**os.environ, "SUBMITIT_EXECUTOR": "slurm", "SLURM_JOB_ID": job, "SLURM_PROCID": "0",
           "SLURM_LOCALID": "0", "SLURM_NODEID": "0", "SLURM_NTASKS": "1", "SLURM_JOB_NUM_NODES": "1"}
    return env | ({"SLURM_ARRAY_JOB_ID": job, "SLURM_ARRAY_TASK_ID": task} if task is not None else {})


def test_a_job_array_and_a_report_job_then_the_jobs_run_as_slurm_runs_them(smoke_sequential, slurm_path, capsys,
                                                                           tmp_path):
    out = tmp_path / "out"
    section = ["launcher.slurm.partition=cpu", "launcher.slurm.mem_gb=4", "launcher.slurm.options={account: lab}"]
    status, stdout, stderr = run_cli(capsys, "run", "smoke", "--launcher", "slurm", "--partition", "gpu", "--cpus",
                                     "1", "--gpus", "2", "--time", "90", "--out", str(out), *SMOKE, *section)
    assert status == 0, stderr
    assert stdout.splitlines()[:3] == ["wrn10_1: SLURM job 4242_0", "hyper_wrn10_1: SLURM job 4242_1",
                                       f"report: SLURM job 4243 writes {out / 'report.md'} when the runs end"]
    array, report = (slurm_path / "call0.txt").read_text(), (slurm_path / "call1.txt").read_text()
    for flag in ("--array=0-1%2", "--partition=gpu", "--cpus-per-task=1", "--gpus-per-node=2", "--mem=4GB",
                 "--time=90", "--signal=USR2@90", "--account=lab", "--job-name=metahyper-smoke",
                 f"--output={out}/slurm/%A_%a_0_log.out"):
        assert f"#SBATCH {flag}\n" in array, flag
    for flag in ("--dependency=afterany:4242", "--partition=gpu", "--cpus-per-task=1", "--account=lab"):
        assert f"#SBATCH {flag}\n" in report, flag
    assert "--gpus-per-node" not in report and "--array" not in report
    assert json.loads((out / LAUNCH_FILE).read_text())["jobs"] == {"wrn10_1": "4242_0", "hyper_wrn10_1": "4242_1"}
    assert "queued       SLURM job 4242_1" in status_text(out)
    assert not list(out.glob("runs/*/*/done.json"))  # submitting did no work
    command = re.search(r"^srun .* (\S+python\S* -u -m submitit\.core\._submit \S+)$", array, re.M).group(1).split()
    for task, run in enumerate(("wrn10_1", "hyper_wrn10_1")):  # the array's tasks, then the report job
        done = subprocess.run(command, env=_job_env("4242", str(task)), capture_output=True, text=True,
                              timeout=LIMIT_S)
        assert done.returncode == 0, done.stderr
    done = subprocess.run(command, env=_job_env("4243"), capture_output=True, text=True, timeout=LIMIT_S)
    assert done.returncode == 0, done.stderr
    assert (out / "results.csv").read_bytes() == (smoke_sequential / "results.csv").read_bytes()
    for run in ("wrn10_1", "hyper_wrn10_1"):
        _same_numbers(out, smoke_sequential, run)
        for stage in ("pretrain", "meta_train", "evaluate"):  # the launcher section is in no config hash
            assert json.loads((out / "runs" / run / stage / "done.json").read_text())["config_hash"] == \
                json.loads((smoke_sequential / "runs" / run / stage / "done.json").read_text())["config_hash"]


def test_local_executor_runs_the_jobs_and_a_preempted_job_resumes_bit_identically(smoke_sequential, tmp_path,
                                                                                   monkeypatch):
    out, marker = tmp_path / "out", tmp_path / "hanging"
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(TESTS), str(TESTS.parent), os.environ.get("PYTHONPATH", "")]))
    monkeypatch.setenv("METAHYPER_TEST_HANG", str(marker))
    plan = plan_suite(load_suite("smoke", SMOKE), out)
    submission = submit_suite(plan, SlurmConfig(cpus=1, time_min=60), imports=("launch_hang",), cluster="local")
    assert submission.report is None and list(submission.jobs) == ["wrn10_1", "hyper_wrn10_1"]
    deadline = time.monotonic() + LIMIT_S
    while not marker.is_file() or not marker.read_text():  # wrn10_1 hangs in iteration 3, checkpoint at 2
        assert time.monotonic() < deadline and not submission.jobs["wrn10_1"].done(), "the job never got there"
        time.sleep(0.1)
    os.kill(int(marker.read_text()), signal.SIGUSR2)  # what SLURM sends on preemption
    for run, job in submission.jobs.items():
        assert job.result() == run  # waits
    log = submission.jobs["wrn10_1"].stderr()
    assert "this job is preempted" in log and "resuming meta-train of wrn10_1 from iteration 2" in log
    rebuild_report(out)
    assert (out / "results.csv").read_bytes() == (smoke_sequential / "results.csv").read_bytes()
    _same_numbers(out, smoke_sequential, "wrn10_1")
