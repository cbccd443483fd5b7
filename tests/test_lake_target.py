"""Lake's one-shot runs as a suite target: scored on exactly their 20 fixed 20-way 1-shot
episodes whatever ``evaluation`` says, reported as an error rate with a t-CI over the runs
(checked against numbers computed here with scipy), a maml run of another way skipped with a
note, an optional target without data skipped, logged and reported, then evaluated by a rerun
once its data is there; and the stage hashes of every built-in suite unchanged."""

from __future__ import annotations

import hashlib
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
from metahyper.stages import STAGES, stage_config
from metahyper.suites import known_suites, load_suite, suite_path

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
    assert f"| conv4+nearest_centroid | omniglot | running | 0 | lake | 20-way 1-shot | 20 runs | {error:.2f} ± {half:.2f} |" \
        in report
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


def test_missing_roots(capsys, tmp_path):
    """A non-optional target without its folder is refused before any work (exit 2); an
    optional one is skipped; an optional root that is a file is refused."""
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


# sha256 over the stage-config hashes of every run of each built-in meta-learning suite (JSON
# {run: [pretrain, meta_train, evaluate]} with sorted keys), computed with the code before
# optional targets existed (main at 43b5cbc): their run folders must keep resuming.
BUILT_IN = {
    "omniglot-cross-alphabet": "499a5c165ab818a9bf89248bec779a6d600f918f6cd2423762bb5cbc2ad5dfe8",
    "omniglot-lake": "745e255ea9fb86cc45a98b71178c72d7f1e22ddb2d22d5b8d1dc8d4858f49b58",
    "omniglot-lr-sweep": "e0364b28aac196e2fbb5d4458ee80e62f8cb8f29333f3e5497c1449f2589e97d",
    "omniglot-maml": "4fcdc92d5536e1dee6a30d591ac00c293309a10638bb7783d4902374835b2b74",
    "omniglot-seeds": "cf4fe60ae4657420807219e7ed351053d4b2ca79c1efb4de2d1978a199f209a6",
    "omniglot-to-mnist": "5ff4c492e50ad877161551dcf9302e61de2d586b16a669784d0a10ac43562e6b",
    "smoke": "cb5c3708f90254ecadbc2618410fdad3737d6355a3a85eb082f2ae48349e0e49",
    "smoke-methods": "dac8d43c8fc1459a734994f8de802e522435daa56efa42efd40635b6388cb2d3",
    "smoke-seeds": "71d9e61c0999787f348a5adb684396a29269c4a44382d3379f4221fff0b28ae3",
    "table7-miniimagenet": "e2ab7601c4b2ecd3cb7e162bda50c85d42de18edba61d1c3a7b5fda5b1cde079",
    "table8-fc100-to-miniimagenet": "1c9abc888809e89623faa27501aae486ca0dabf1bae042b5ee91317c8b9ac0e6",
}


def suite_digest(name: str) -> str:
    suite = load_suite(name)
    hashes = {run: [config_hash(stage_config(suite, run, stage)) for stage in STAGES] for run in suite.runs}
    return hashlib.sha256(json.dumps(hashes, sort_keys=True).encode()).hexdigest()


def test_built_in_suites_keep_their_stage_hashes():
    meta = [n for n in known_suites() if load_yaml(suite_path(n)).get("kind") not in ("classify", "language_model")]
    assert {name: suite_digest(name) for name in meta} == BUILT_IN
