"""Seeds in suites: a run listing seeds expands into one run per seed (keys derived, folders
named), the evaluation episodes stay one fixed set, and a tiny 2-seed suite runs end to end."""

from __future__ import annotations

import csv
import json

import pytest
import yaml
from tiny_suites import SMOKE

from metahyper.config import ConfigError
from metahyper.pipeline.runs import run_suite
from metahyper.suite.config import load_suite, suite_path

SEED_KEYS = ("seed", "pretrain.seed", "episodes.seed", "meta_train.seed")


def seed_fields(spec):
    return (spec.seed, spec.pretrain.seed, spec.episodes.seed, spec.meta_train.seed)


def test_suite_seeds_expand_every_run_and_derive_every_seed_key():
    suite = load_suite("smoke-seeds")
    runs = ("wrn10_1", "hyper_wrn10_1", "hyper_wrn10_1-legacy", "hyper_wrn10_1-anil")
    assert list(suite.runs) == [f"{run}-s{s}" for run in runs for s in (0, 1, 2)]
    for name, spec in suite.runs.items():
        seed = int(name.rsplit("-s", 1)[1])
        assert seed_fields(spec) == (seed,) * len(SEED_KEYS)
        assert spec.report_name == name.rsplit("-s", 1)[0] and spec.seeds is None
    assert suite.evaluation.seed == 0  # one fixed evaluation episode set for every seed
    assert suite.run_groups() == list(runs)
    assert suite.select("hyper_wrn10_1") == ["hyper_wrn10_1-s0", "hyper_wrn10_1-s1", "hyper_wrn10_1-s2"]


def test_a_runs_own_seeds_win_over_the_suites_and_one_seed_suites_stay_unchanged():
    suite = load_suite("smoke", ["seeds=[4, 5]", "runs.wrn10_1.seeds=[7]"])
    assert list(suite.runs) == ["wrn10_1-s7", "hyper_wrn10_1-s4", "hyper_wrn10_1-s5"]
    assert seed_fields(suite.runs["hyper_wrn10_1-s5"]) == (5, 5, 5, 5)
    plain = load_suite("smoke")
    assert list(plain.runs) == ["wrn10_1", "hyper_wrn10_1"] and plain.runs["wrn10_1"].report_name is None


@pytest.mark.parametrize("override, message", [
    ("seeds=[]", "seeds must be a non-empty list"),
    ("seeds=[1, 1]", "distinct"),
    ("runs.wrn10_1.seeds=[-1]", ">= 0"),
])
def test_bad_seeds_are_refused_naming_the_key(override, message):
    with pytest.raises(ConfigError, match=message):
        load_suite("smoke", [override])


def test_expanded_name_colliding_with_a_run_is_refused(tmp_path):
    data = yaml.safe_load(load_suite_text("smoke"))
    data["runs"]["wrn10_1-s0"] = data["runs"]["wrn10_1"]
    data["runs"]["wrn10_1"]["seeds"] = [0]
    path = tmp_path / "clash.yaml"
    path.write_text(yaml.safe_dump(data))
    with pytest.raises(ConfigError, match="'wrn10_1-s0' twice"):
        load_suite(path)


def load_suite_text(name: str) -> str:
    return suite_path(name).read_text()


def test_ablation_runs_are_expressible_with_seeds(tmp_path):
    """A legacy-init hyper run and an ANIL control, paired by compare_with, at two seeds."""
    data = yaml.safe_load(load_suite_text("smoke"))
    hyper = data["runs"]["hyper_wrn10_1"]
    data["runs"]["hyper_wrn10_1-legacy"] = {**hyper, "compare_with": "wrn10_1",
                                            "model": {"name": "hyper_wrn", "options": {"variant": 1, "init": "legacy"}}}
    data["runs"]["anil-hyper_wrn10_1"] = {**hyper, "compare_with": "hyper_wrn10_1", "meta_train": {
        **hyper["meta_train"], "maml": {**hyper["meta_train"]["maml"], "inner_roles": ["classifier"]}}}
    data["seeds"] = [0, 1]
    path = tmp_path / "ablation.yaml"
    path.write_text(yaml.safe_dump(data))
    suite = load_suite(path)
    assert suite.runs["hyper_wrn10_1-legacy-s1"].model.options["init"] == "legacy"
    anil = suite.runs["anil-hyper_wrn10_1-s1"]
    assert anil.meta_train.maml.inner_roles == ("classifier",) and anil.compare_with == "hyper_wrn10_1"
    assert seed_fields(anil) == (1, 1, 1, 1)


def test_two_seed_suite_end_to_end(tmp_path):
    out = tmp_path / "out"
    suite = load_suite("smoke", [*SMOKE, "seeds=[0, 1]", "evaluation.baselines={nearest_centroid: {}}"])
    run_suite(suite, out, progress=False)
    runs = sorted(p.name for p in (out / "runs").iterdir())
    assert runs == ["hyper_wrn10_1-s0", "hyper_wrn10_1-s1", "wrn10_1-s0", "wrn10_1-s1"]
    own = load_suite(out / "runs" / "hyper_wrn10_1-s1" / "config.yaml")
    assert list(own.runs) == ["hyper_wrn10_1-s1"] and seed_fields(own.runs["hyper_wrn10_1-s1"]) == (1, 1, 1, 1)
    rows = list(csv.DictReader((out / "results.csv").open()))
    assert sorted((r["model"], r["seed"]) for r in rows if "+" not in r["model"]) == [
        ("hyper_wrn10_1", "0"), ("hyper_wrn10_1", "1"), ("wrn10_1", "0"), ("wrn10_1", "1")]
    assert len({r["episodes_hash"] for r in rows}) == 1  # every seed on the same episodes
    document = json.loads((out / "results.json").read_text())
    assert {(p["hyper"], p["seed"]) for p in document["paired"] if "+" not in p["hyper"]} == {
        ("hyper_wrn10_1", 0), ("hyper_wrn10_1", 1)}
    across = [s for s in document["paired_across_seeds"] if s["hyper"] == "hyper_wrn10_1"]
    assert len(across) == 1 and across[0]["seeds"] == [0, 1] and across[0]["ci95"] is not None
    assert {(m["hyper_run"], m["plain_run"]) for m in document["movement_ratios"]} == {
        ("hyper_wrn10_1-s0", "wrn10_1-s0"), ("hyper_wrn10_1-s1", "wrn10_1-s1")}
    text = (out / "report.md").read_text()
    assert "mean (2 seeds)" in text and "Paired comparisons across seeds" in text
    assert (out / "movement_curves.png").is_file()
    # a seeded run's name stands for all its seeds; finished stages are skipped
    run_suite(suite, out, runs=["wrn10_1"], progress=False)
