"""Interrupts (issue 28, cases 5, 6 and 11): a process signalled during a validation or inside
``torch.save`` exits 130 as stopped (no failed.json, ``status`` says stopped), and a rerun resumes
to the numbers of an unbroken run with no metric missing; stale temporary files go on that rerun;
a ``--jobs`` pool started with SIGINT ignored and blocked still stops its workers on SIGTERM."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from foreground import default_sigint
from tiny_suites import SMOKE

from metahyper.launch.status import status_text

TESTS = Path(__file__).resolve().parent
RUN = "wrn10_1"
LIMIT_S = 600  # a guard against a hang on a loaded machine, not a speed check


def _env(**extra: str) -> dict[str, str]:
    """This environment with the tests folder importable (for ``--import``) and one thread."""
    path = os.pathsep.join([str(TESTS), str(TESTS.parent), os.environ.get("PYTHONPATH", "")])
    return {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": path, **extra}


def _run(out: Path, *extra: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    """``metahyper run smoke wrn10_1`` (the reduced suite) into ``out`` in a new process."""
    command = [sys.executable, "-m", "metahyper.cli", "run", "smoke", RUN, "--threads", "1", "--out", str(out),
               *extra, *SMOKE]
    return subprocess.run(command, capture_output=True, text=True, env=env or _env(), timeout=LIMIT_S,
                          preexec_fn=default_sigint)


def _states(out: Path) -> dict[str, str]:
    """stage -> state of run wrn10_1 in ``metahyper status``."""
    lines = status_text(out).splitlines()
    start = lines.index(f"  {RUN}")
    return {line.split()[0]: line.split()[1] for line in lines[start + 1:start + 4]}


def _records(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def _same_as_unbroken(out: Path, reference: Path) -> None:
    """Every metric (training and validation) and every result equals the unbroken run's."""
    for name in ("meta_train/metrics.jsonl", "pretrain/pretrain_metrics.jsonl"):
        assert _records(out / "runs" / RUN / name) == _records(reference / "runs" / RUN / name), name
    results = [json.loads((folder / "runs" / RUN / "evaluate" / "results.json").read_text())
               for folder in (out, reference)]
    assert results[0] == results[1]


@pytest.mark.parametrize("point, signame", [("validation", "SIGTERM"), ("save", "SIGINT")])
def test_an_interrupt_stops_the_run_and_the_rerun_loses_nothing(smoke_sequential, tmp_path, point, signame):
    out, marker = tmp_path / "out", tmp_path / "signalled"
    stopped = _run(out, "--import", "interrupt_hooks",
                   env=_env(METAHYPER_TEST_INTERRUPT=f"{point}:{signame}:{marker}"))
    assert marker.is_file(), stopped.stderr  # the hook fired
    assert stopped.returncode == 130, stopped.stderr
    assert "interrupted; run the same command again to resume" in stopped.stderr
    assert "Traceback" not in stopped.stderr and "RuntimeError" not in stopped.stderr
    folder = out / "runs" / RUN / "meta_train"
    assert not (folder / "failed.json").exists()
    assert _states(out) == {"pretrain": "done", "meta-train": "stopped", "evaluate": "not"}
    kept = [r["iteration"] for r in _records(folder / "metrics.jsonl") if r["kind"] == "val"]
    # inside torch.save the checkpoint of 2 is finished first (its validation came before it); during the
    # validation of 2 neither is on disk, and the rerun must make both
    assert kept == ([2] if point == "save" else [])
    for stale in (folder / ".checkpoint.pt.killed.tmp", out / "runs" / RUN / ".config.yaml.killed.tmp"):
        stale.write_bytes(b"left by a process killed mid-write")
    resumed = _run(out, "--import", "interrupt_hooks", env=_env(METAHYPER_TEST_INTERRUPT=f"{point}:{signame}:{marker}"))
    assert resumed.returncode == 0, resumed.stderr
    expected_start = "resuming meta-train of wrn10_1 from iteration 2" if point == "save" else "meta-train ..."
    assert expected_start in resumed.stderr
    _same_as_unbroken(out, smoke_sequential)
    assert [r["iteration"] for r in _records(folder / "metrics.jsonl") if r["kind"] == "val"] == [2, 4]
    assert not list(out.rglob("*.tmp"))
    assert _states(out) == {"pretrain": "done", "meta-train": "done", "evaluate": "done"}


# As a shell script's ``cmd &`` starts a job (SIGINT ignored), with SIGINT blocked too; both survive exec.
IGNORING_SIGINT = ("import os, signal, sys; signal.signal(signal.SIGINT, signal.SIG_IGN); "
                   "signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT}); "
                   "os.execv(sys.executable, [sys.executable, '-m', 'metahyper.cli', *sys.argv[1:]])")


def test_a_pool_started_with_sigint_ignored_stops_its_workers_on_sigterm(tmp_path):
    out, marker = tmp_path / "out", tmp_path / "hanging"
    command = [sys.executable, "-c", IGNORING_SIGINT, "run", "smoke", RUN, "--jobs", "1", "--threads", "1",
               "--import", "launch_hang", "--out", str(out), *SMOKE]
    pool = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env=_env(METAHYPER_TEST_HANG=str(marker)))
    deadline = time.monotonic() + LIMIT_S
    while not marker.is_file() or not marker.read_text():  # the worker hangs in iteration 3
        assert pool.poll() is None and time.monotonic() < deadline, pool.communicate()
        time.sleep(0.1)
    worker = int(marker.read_text())
    pool.send_signal(signal.SIGTERM)
    _, stderr = pool.communicate(timeout=LIMIT_S)
    assert pool.returncode == 130 and "interrupted; run the same command again to resume" in stderr
    with pytest.raises(ProcessLookupError):
        os.kill(worker, 0)
    # the worker stopped on the pool's SIGTERM (not the SIGKILL that follows a grace period)
    assert "metahyper worker: interrupted; run the same command again to resume" in \
        (out / "runs" / RUN / "run.log").read_text()
    assert _states(out)["meta-train"] == "stopped"
