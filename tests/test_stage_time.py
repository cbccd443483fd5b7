"""A stage's time in done.json, ``metahyper status`` and the log is summed over the processes that
worked on it: a pretraining stopped once (Ctrl-C) and resumed is timed as both together. A fake
clock stands in for the process clocks, so the expected sums are exact."""

from __future__ import annotations

import json
import logging

from cli_run import run_cli
from tiny_suites import SMOKE

from metahyper.launch.status import status_text
from metahyper.pipeline import runs


def test_stage_time_is_summed_over_a_stop_and_its_resume(capsys, caplog, monkeypatch, tmp_path):
    clock = [1000.0, 40.0]  # (wall, CPU) seconds; only the stage's own work advances them
    monkeypatch.setattr(runs, "stage_clock", lambda: (clock[0], clock[1]))
    real, calls = runs.STAGE_RUNNERS["pretrain"], []

    def runner(ws, run, folder):
        calls.append(run)
        clock[0] += 100.0 * len(calls)  # the first process works 100 s wall, the second 200 s
        clock[1] += 30.0 * len(calls)  # and 30 s, then 60 s of CPU
        if len(calls) == 1:
            raise KeyboardInterrupt
        real(ws, run, folder)

    monkeypatch.setitem(runs.STAGE_RUNNERS, "pretrain", runner)
    out, folder = tmp_path / "out", tmp_path / "out" / "runs" / "wrn10_1" / "pretrain"
    argv = ("pretrain", "smoke", "wrn10_1", "--out", str(out), *SMOKE)
    assert run_cli(capsys, *argv)[0] == 130
    assert json.loads((folder / "time.json").read_text()) == {"seconds": 100.0, "cpu_seconds": 30.0, "processes": 1}
    with caplog.at_level(logging.INFO, logger="metahyper"):
        assert run_cli(capsys, *argv)[0] == 0
    marker = json.loads((folder / "done.json").read_text())
    assert (marker["seconds"], marker["cpu_seconds"], marker["processes"]) == (300.0, 90.0, 2)
    assert "[smoke] wrn10_1: pretrain done in 300.0 s (summed over 2 processes: it was resumed)" in caplog.messages
    assert "pretrain    done         300.0 s (CPU 90.0 s) on cpu" in status_text(out)
