"""Lake's one-shot runs as a suite target: scored on exactly their 20 fixed 20-way 1-shot
episodes whatever ``evaluation`` says, reported as an error rate with a t-CI over the runs
(checked against numbers computed here with scipy), a maml run of another way skipped with a
note, an optional target without data skipped, logged and reported, then evaluated by a rerun
once its data is there; ``optional`` out of the stage hashes unless true (every built-in suite's
hashes are pinned in test_groups_suites.py)."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import yaml
from cli_run import run_cli
from data.archives import lake_runs, omniglot_zip
from scipy import stats
from tiny_suites import TRAINING

from metahyper.config import config_hash, load_yaml
from metahyper.pipeline.stages import STAGES, stage_config
from metahyper.suite.config import load_suite, suite_path

CORRECT = [20, 19, 18, 17, 20, 15, 20, 14, 20, 20, 19, 16, 20, 20, 18, 20, 13, 20, 20, 19]  # per run, of 20


def _suite(tmp_path, lake_root, absent_root) -> str:
    """A tiny suite: Omniglot-like source (20 characters x 4 images), the Lake runs as target
    ``lake`` and an optional second copy at ``absent_root``; a 5-way maml run, a 20-way maml run
    and a 5-way protonet run, each with the nearest-centroid baseline (running BN statistics)."""
    source = tmp_path / "source"
    source.mkdir(parents=True)
    omniglot_zip(source / "images_background_small1.zip", {"Alpha": 20}, per_char=4)
    runs = {"conv4": {"episodes": {"way": 5}}, "conv4-20way": {"episodes": {"way": 20}},
            "proto": {"method": "protonet", "episodes": {"way": 5}}}
    suite = {
        "name": "lake-tiny",
        "data": {"dataset": "omniglot", "root": str(source), "split": "train", "images_per_class": 4,
                 "options": {"alphabets": ["Alpha"]}},
        "targets": {"lake": {"dataset": "omniglot_lake_runs", "root": str(lake_root)},
                    "later": {"dataset": "omniglot_lake_runs", "root": str(absent_root), "optional": True}},
        "runs": {name: {"model": {"name": "conv4"}, **spec} for name, spec in runs.items()},
        "evaluation": {"shots": [1, 5], "baselines": {"nearest_centroid": {"bn_mode": "running"}}},
        "device": "cpu",
    }
    path = tmp_path / "lake-tiny.yaml"  # beside the source folder
    path.write_text(yaml.safe_dump(suite))
    return str(path)


def _run(capsys, suite, out) -> tuple[int, str]:
    status, _, err = run_cli(capsys, "run", suite, *TRAINING, "episodes.query=1", "evaluation.inner_steps_eval=1",
                             "--out", str(out))
    return status, err


def _expected(correct: list[int]) -> tuple[float, float]:
    """Error rate and 95% CI half width (percent) by hand: scipy's t quantile, numpy's std."""
    accuracies = np.array(correct) / 20
    half = stats.t.ppf(0.975, len(accuracies) - 1) * accuracies.std(ddof=1) / math.sqrt(len(accuracies))
    return 100 * (1 - accuracies.mean()), 100 * half


def test_lake_target_end_to_end(capsys, tmp_path):
    runs = lake_runs(CORRECT, seed=2)
    runs.write(tmp_path / "lake" / "all_runs")
    suite, out = _suite(tmp_path, tmp_path / "lake", tmp_path / "later"), tmp_path / "out"
    status, err = _run(capsys, suite, out)
    assert status == 0, err
    absent = (f"target later (omniglot_lake_runs, optional) was skipped: its root {tmp_path / 'later'} does not "
              f"exist; get it with `metahyper data fetch omniglot_lake_runs --root {tmp_path / 'later'}`")
    assert absent in err  # the log
    report = (out / "report.md").read_text()
    assert absent in report
    assert ("conv4 (maml) was not evaluated on lake: its episodes are 20-way, and maml adapts a head of "
            "episodes.way = 5 outputs") in report
    results = json.loads((out / "results.json").read_text())
    lake = {r["model"]: r for r in results["results"] if r["target"] == "lake"}
    assert sorted(lake) == ["conv4+nearest_centroid", "conv4-20way", "conv4-20way+nearest_centroid", "proto",
                            "proto+nearest_centroid"]
    assert not [r for r in results["results"] if r["target"] == "later"]
    for record in lake.values():  # the 20 runs at 20-way 1-shot, whatever evaluation.shots/query/episodes say
        assert (record["way"], record["shot"], record["n"]) == (20, 1, 20)
        assert record["config"]["evaluation"]["metric"] == "error_rate"
    centroid = lake["conv4+nearest_centroid"]
    assert centroid["per_episode"] == [c / 20 for c in CORRECT]  # identical copies: exactly the designed runs
    error, half = _expected(CORRECT)
    row = f"| conv4+nearest_centroid | omniglot | running | 0 | lake | 20-way 1-shot | 20 runs | {error:.2f} ± {half:.2f} |"
    assert row in report
    entry = next(e for e in results["error_rates"] if e["model"] == "conv4+nearest_centroid")
    assert entry["error_rate"] == pytest.approx(error / 100) and entry["ci95"] == pytest.approx(half / 100)
    assert "Error rate (%) = 100 - mean accuracy over the n episodes" in report

    # the optional target's data arrives: a rerun evaluates it, redoing the evaluate stages only
    runs.zip(tmp_path / "later" / "all_runs.zip")
    status, err = _run(capsys, suite, out)
    assert status == 0, err
    assert err.count("finished before, skipped") == 6 and "was skipped" not in err
    results = json.loads((out / "results.json").read_text())
    later = {r["model"]: r["per_episode"] for r in results["results"] if r["target"] == "later"}
    assert later["conv4+nearest_centroid"] == [c / 20 for c in CORRECT]
    assert absent not in (out / "report.md").read_text()


def test_refused_before_any_work(capsys, tmp_path):
    """Refused before any work (exit 2): a non-optional target without its folder, an optional
    root that is a file, ``groups`` on a target whose data set defines its episodes."""
    runs = lake_runs()
    runs.write(tmp_path / "lake" / "all_runs")
    suite = _suite(tmp_path, tmp_path / "nowhere", tmp_path / "later")
    status, err = _run(capsys, suite, tmp_path / "out")
    assert status == 2 and f"targets.lake.root = '{tmp_path / 'nowhere'}' does not exist" in err
    assert not (tmp_path / "out").exists()
    (tmp_path / "file").write_text("")
    suite = _suite(tmp_path / "b", tmp_path / "lake", tmp_path / "file")
    status, err = _run(capsys, suite, tmp_path / "out")
    assert status == 2 and "targets.later.root" in err and "is a file, not a folder" in err
    status, _, err = run_cli(capsys, "run", suite, *TRAINING, "targets.lake.groups=alphabet",
                             f"targets.later.root={tmp_path / 'absent'}", "--out", str(tmp_path / "out"))
    assert status == 2 and "targets.lake.groups = 'alphabet', but omniglot_lake_runs defines its own episodes" in err


def test_optional_is_hashed_only_when_true(tmp_path):
    path = tmp_path / "smoke.yaml"
    data = load_yaml(suite_path("smoke"))
    for target in data["targets"].values():
        target["optional"] = False
    path.write_text(yaml.safe_dump(data))
    explicit, default = load_suite(path), load_suite("smoke")
    for run in default.runs:
        for stage in STAGES:
            assert config_hash(stage_config(explicit, run, stage)) == config_hash(stage_config(default, run, stage))
    optional = load_suite("smoke", ["targets.*.optional=true"])
    assert stage_config(optional, "wrn10_1", "evaluate")["targets"]["synthetic-target"]["optional"] is True
