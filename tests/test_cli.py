"""The metahyper command: help, a suite run through the CLI, reports, data summaries, and
errors that exit 2 naming the key, the value or the path."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from cli_run import run_cli
from tiny_suites import SMOKE

from metahyper import cli
from metahyper.resources import SUITES_DIR


def _main(capsys, *argv: str) -> tuple[int, str, str]:
    """(exit status, stdout, stderr) of ``metahyper argv``."""
    return run_cli(capsys, *argv)


def test_console_script_help():
    result = subprocess.run([sys.executable, "-m", "metahyper.cli", "--help"], capture_output=True, text=True)
    assert result.returncode == 0 and "run" in result.stdout and "smoke" in result.stdout


@pytest.mark.parametrize("command", ["run", "pretrain", "meta-train", "evaluate", "report", "status", "data", "bench"])
def test_every_subcommand_has_help(capsys, command):
    status, out, _ = _main(capsys, command, "--help")
    assert status == 0 and out.startswith(f"usage: metahyper {command}")


@pytest.mark.parametrize("override, named", [
    ("meta_train.iteratons=5", "iteratons"),
    ("runs.wrn10_1.modle.name=conv4", "runs.wrn10_1.modle"),
    ("evaluation.episodes=many", "evaluation.episodes"),
    ("evaluation.bn_mode=sideways", "bn_mode"),
    ("runs.7.seed=1", "runs.7"),
    ("nonsense", "nonsense"),
])
def test_unknown_keys_and_bad_values_exit_2_naming_them(capsys, tmp_path, override, named):
    status, _, err = _main(capsys, "run", "smoke", override, "--out", str(tmp_path / "out"))
    assert status == 2 and named in err and "metahyper run: error:" in err
    assert not (tmp_path / "out").exists()


def test_missing_data_path_exits_2_naming_suite_field_and_path(capsys, tmp_path):
    missing = tmp_path / "no-fc100"
    status, _, err = _main(capsys, "run", "table8-fc100-to-miniimagenet", f"data.root={missing}",
                           "--out", str(tmp_path / "out"))
    assert status == 2 and "table8-fc100-to-miniimagenet" in err and "data.root" in err and str(missing) in err
    assert not (tmp_path / "out").exists()


def test_unknown_suite_and_stage_without_run_exit_2(capsys, tmp_path):
    status, _, err = _main(capsys, "run", "no-such-suite")
    assert status == 2 and "unknown suite 'no-such-suite'" in err and "smoke" in err
    status, _, err = _main(capsys, "pretrain", "smoke", "--out", str(tmp_path))
    assert status == 2 and "wrn10_1, hyper_wrn10_1" in err


def test_run_evaluate_and_report_through_the_cli(capsys, tmp_path):
    out = tmp_path / "smoke"
    status, stdout, err = _main(capsys, "run", *SMOKE, "--out", str(out))
    assert status == 0, err
    assert f"report: {out / 'report.md'}" in stdout and "wrn10_1: pretrain done" in err
    marker = (out / "runs/wrn10_1/evaluate/done.json").read_text()
    status, _, err = _main(capsys, "evaluate", str(out / "runs/wrn10_1/config.yaml"))  # its own suite folder
    assert status == 0 and "evaluate finished before, skipped" in err
    assert (out / "runs/wrn10_1/evaluate/done.json").read_text() == marker
    for folder in (out, out / "runs/hyper_wrn10_1"):
        (out / "report.md").unlink()
        status, stdout, _ = _main(capsys, "report", str(folder))
        assert status == 0 and (out / "report.md").is_file() and "report.md" in stdout


def test_report_of_a_folder_without_results_exits_2(capsys, tmp_path):
    status, _, err = _main(capsys, "report", str(tmp_path))
    assert status == 2 and "nothing to report" in err


def test_data_prints_a_store_summary(capsys):
    status, out, _ = _main(capsys, "data", "synthetic", "--split", "val", "--option", "family=target",
                           "--option", "num_classes=3", "--option", "images_per_class=4")
    assert status == 0 and "classes: 3" in out and "images: 12" in out


def test_data_with_a_missing_root_exits_2(capsys, tmp_path):
    status, _, err = _main(capsys, "data", "fc100", "--root", str(tmp_path / "nothing"))
    assert status == 2 and "nothing" in err


def test_unknown_benchmark_exits_2_listing_the_known_ones(capsys):
    status, _, err = _main(capsys, "bench", "no-such-benchmark")
    scripts = sorted(p.stem for p in (SUITES_DIR.parent / "speed").glob("*.py"))
    known = [name for name in scripts if not name.startswith("_")]  # _helpers are imported, not run
    assert status == 2 and "no-such-benchmark" in err and all(name in err for name in known)
    assert "_peer_models" in scripts and "_peer_models" not in err


def test_torchrun_is_refused_for_whole_suites(capsys, monkeypatch):
    monkeypatch.setenv("WORLD_SIZE", "2")
    status, _, err = _main(capsys, "run", "smoke")
    assert status == 2 and "torchrun" in err


def test_suites_folder_is_found_next_to_the_package():
    assert SUITES_DIR == Path(cli.__file__).resolve().parents[2] / "benchmarks" / "suites"
    assert (SUITES_DIR / "smoke.yaml").is_file()


def test_meta_train_under_torchrun_matches_one_process(capsys, tmp_path):
    """Two gloo ranks (each half of every meta-batch, gradients all-reduced) end with the
    parameters of a single process, through `torchrun ... metahyper.cli meta-train`."""
    args = ["smoke", "wrn10_1", *SMOKE, "meta_train.iterations=2", "meta_train.validate_every=100"]
    for folder in ("single", "ranks"):
        assert _main(capsys, "pretrain", *args, "--out", str(tmp_path / folder))[0] == 0
    assert _main(capsys, "meta-train", *args, "--out", str(tmp_path / "single"))[0] == 0
    torchrun = Path(sys.executable).parent / "torchrun"
    result = subprocess.run([str(torchrun), "--nproc_per_node=2", "-m", "metahyper.cli", "meta-train", *args,
                             "--out", str(tmp_path / "ranks")], capture_output=True, text=True,
                            env={**os.environ, "OMP_NUM_THREADS": "1"}, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    single, ranks = (torch.load(tmp_path / f / "runs/wrn10_1/meta_train/checkpoint.pt", weights_only=True)["model"]
                     for f in ("single", "ranks"))
    assert single.keys() == ranks.keys()
    assert all(torch.allclose(single[k].double(), ranks[k].double(), atol=1e-5) for k in single)
    assert (tmp_path / "ranks/runs/wrn10_1/meta_train/done.json").is_file()


def test_usage_lines_list_the_choices(capsys):
    status, _, err = _main(capsys, "list")
    assert status == 2 and "required: {models,datasets,suites}" in err
    benchmarks = sorted(p.stem for p in (SUITES_DIR.parent / "speed").glob("[!_]*.py"))
    status, _, err = _main(capsys, "bench")
    assert status == 2 and f"name a benchmark: {', '.join(benchmarks)}" in err
    assert f"usage: metahyper bench {{{','.join(benchmarks)}}} [ARGS ...]" in err


def test_status_refuses_a_folder_that_is_not_a_suite_folder(capsys, tmp_path):
    (tmp_path / "runs" / "smoke" / "runs").mkdir(parents=True)  # a project folder with its runs/ folder
    (tmp_path / "runs" / "smoke" / "suite.yaml").write_text("name: smoke\nruns: {}\n")
    for folder in (tmp_path, tmp_path / "runs"):
        status, out, err = _main(capsys, "status", str(folder))
        assert status == 2 and out == "" and f"{folder} is not a suite folder" in err and "suite.yaml" in err
    assert f"the suite folders in it: {tmp_path / 'runs' / 'smoke'}" in err


def test_status_follows_the_suites_current_seeds(capsys, tmp_path):
    out = tmp_path / "out"
    status, _, err = _main(capsys, "pretrain", "smoke", "wrn10_1", "seeds=[0, 1]", "--out", str(out), *SMOKE)
    assert status == 0, err
    status, _, err = _main(capsys, "run", "smoke", "seeds=[0]", "--out", str(out), *SMOKE)
    assert status == 0, err
    status, text, _ = _main(capsys, "status", str(out))
    assert status == 0
    current, retired = text.split("not in the suite any more")
    assert current.splitlines()[0] == f"{out}: 2 run(s)"
    assert "  wrn10_1-s0\n" in current and "  hyper_wrn10_1-s0\n" in current and "-s1" not in current
    lines = retired.splitlines()
    assert lines[1] == "  wrn10_1-s1" and lines[2].split()[:2] == ["pretrain", "done"]
    assert len(lines) == 6 and lines[5].startswith("report: ")  # the three stages of the one retired run
