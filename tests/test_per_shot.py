"""Per-shot meta-training (``per_shot: true``): one model per evaluated shot, each meta-trained on
episodes of its shot and scored at that shot only, the shots of one model and seed sharing one
pretraining; and the baselines' batch-norm mode (running statistics unless asked otherwise)."""

from __future__ import annotations

import copy
import hashlib
import json

import pytest
import torch
import yaml
from tiny_suites import SMOKE

from metahyper.config import ConfigError, config_hash, save_yaml
from metahyper.pipeline.manifest import verify_stage
from metahyper.pipeline.runs import plan_suite, run_suite
from metahyper.pipeline.shared_pretraining import pretraining_siblings
from metahyper.pipeline.stages import stage_config
from metahyper.suite.config import load_suite, suite_path

PER_SHOT = [*SMOKE, "evaluation.shots=[1, 2]", "per_shot=true"]


def test_per_shot_expands_each_run_per_shot_and_seed_with_a_shared_pretraining():
    suite = load_suite("smoke", [*PER_SHOT, "seeds=[0, 1]"])
    assert list(suite.runs) == [f"{run}-{shot}shot-s{seed}" for run in ("wrn10_1", "hyper_wrn10_1")
                                for seed in (0, 1) for shot in (1, 2)]
    spec = suite.runs["hyper_wrn10_1-2shot-s1"]
    assert (spec.episodes.shot, spec.eval_shots, spec.report_name, spec.seed) == (2, (2,), "hyper_wrn10_1", 1)
    assert spec.pretrain_from == "hyper_wrn10_1-1shot-s1"
    pretrain = {run: config_hash(stage_config(suite, run, "pretrain")) for run in suite.runs}
    assert pretrain["wrn10_1-1shot-s0"] == pretrain["wrn10_1-2shot-s0"] != pretrain["wrn10_1-1shot-s1"]
    meta = {run: stage_config(suite, run, "meta_train")["episodes"]["shot"] for run in suite.runs}
    assert meta["wrn10_1-1shot-s0"] == 1 and meta["wrn10_1-2shot-s0"] == 2
    assert suite.select("wrn10_1") == ["wrn10_1-1shot-s0", "wrn10_1-2shot-s0", "wrn10_1-1shot-s1", "wrn10_1-2shot-s1"]


def test_a_runs_own_per_shot_wins_and_without_it_nothing_changes():
    suite = load_suite("smoke", [*SMOKE, "per_shot=true", "runs.wrn10_1.per_shot=false"])
    assert list(suite.runs) == ["wrn10_1", "hyper_wrn10_1-1shot"]
    plain = load_suite("smoke", SMOKE)
    assert plain.runs["wrn10_1"].eval_shots is None and plain.runs["wrn10_1"].pretrain_from is None
    # a suite without per_shot keeps the stage hashes its run folders were written under
    assert "shots" not in stage_config(plain, "wrn10_1", "evaluate")


def _sha(path):
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_a_per_shot_suite_runs_end_to_end_each_cell_from_the_model_of_its_shot(tmp_path):
    suite = load_suite("smoke", PER_SHOT)
    run_suite(suite, tmp_path, progress=False)
    runs = tmp_path / "runs"
    marker = json.loads((runs / "wrn10_1-2shot" / "pretrain" / "done.json").read_text())
    assert marker["shared_from"] == "wrn10_1-1shot"  # pretrained once, then linked
    owner = json.loads((runs / "wrn10_1-1shot" / "pretrain" / "done.json").read_text())
    assert marker["seconds"] < owner["seconds"] and marker["processes"] == 1  # the training's time counted once
    assert _sha(runs / "wrn10_1-2shot/pretrain/pretrained.pt") == _sha(runs / "wrn10_1-1shot/pretrain/pretrained.pt")
    # the linked files are the owner's bytes: the linked stage records, and verifies, the owner's SHA-256
    owner = json.loads((runs / "wrn10_1-1shot" / "pretrain" / "done.json").read_text())["artifacts"]
    assert marker["artifacts"]["runs/wrn10_1-2shot/pretrain/pretrained.pt"] == \
        owner["runs/wrn10_1-1shot/pretrain/pretrained.pt"] == _sha(runs / "wrn10_1-1shot/pretrain/pretrained.pt")
    verify_stage(tmp_path, runs / "wrn10_1-2shot" / "pretrain")
    records = [r for path in sorted(runs.glob("*/evaluate/results.json")) for r in json.loads(path.read_text())]
    cells = {(r["model"], r["shot"]): r for r in records}
    assert set(cells) == {(f"{model}{method}", shot) for model in ("wrn10_1", "hyper_wrn10_1") for shot in (1, 2)
                          for method in ("", "+nearest_centroid", "+logistic_regression")}
    for record in records:
        (folder, spec), = record["config"]["run"]["runs"].items()
        assert spec["episodes"]["shot"] == record["shot"], folder  # meta-trained at the shot it is scored at
        assert folder.endswith(f"-{record['shot']}shot")


def test_baselines_use_running_statistics_by_default_and_the_episodes_on_request(tmp_path):
    base = [*SMOKE, "evaluation.baselines={nearest_centroid: {}}", "evaluation.bn_mode=transductive"]
    run_suite(load_suite("smoke", base), tmp_path / "running", progress=False, runs=["wrn10_1"])
    run_suite(load_suite("smoke", [*base, "evaluation.baseline_bn_mode=transductive"]), tmp_path / "episode",
              progress=False, runs=["wrn10_1"])
    modes = {}
    for name in ("running", "episode"):
        records = json.loads((tmp_path / name / "runs/wrn10_1/evaluate/results.json").read_text())
        modes[name] = {r["model"]: r["bn_mode"] for r in records}
    assert modes["running"] == {"wrn10_1": "transductive", "wrn10_1+nearest_centroid": "running"}
    assert modes["episode"] == {"wrn10_1": "transductive", "wrn10_1+nearest_centroid": "transductive"}


def test_running_mode_features_are_the_eval_mode_forward():
    """The running mode's features are those of ``model.eval()``: a query's feature does not
    depend on the other images of its episode (the transductive mode's do)."""
    from metahyper.meta.baselines import extract_features
    from metahyper.models import build_model

    torch.manual_seed(0)
    model = build_model("conv4", 5)
    model.train()
    for _ in range(3):  # running statistics away from their initial values
        model(torch.randn(16, 3, 28, 28) * 2 + 1)
    support, query = torch.randn(5, 3, 28, 28), torch.randn(7, 3, 28, 28)
    model.eval()
    with torch.no_grad():
        expected = model.features(query)
    model.train()
    _, got = extract_features(model, support, query, "running")
    torch.testing.assert_close(got, expected)
    _, alone = extract_features(model, support, query[:1], "running")
    torch.testing.assert_close(alone, expected[:1])
    _, transductive = extract_features(model, support, query, "transductive")
    assert not torch.allclose(transductive, expected)


@pytest.mark.parametrize("value", ["none", "eval"])
def test_an_unknown_baseline_bn_mode_is_refused(value):
    with pytest.raises(ConfigError, match="baseline_bn_mode must be one of"):
        load_suite("smoke", [f"evaluation.baseline_bn_mode={value}"])


def _suite_with_variant(tmp_path, **variant_edits):
    """smoke plus ``hyper_outer``: the hyper run with ``other_weights: outer``, sharing the
    pretraining of ``hyper_wrn10_1`` (``pretrain_from``)."""
    data = yaml.safe_load(suite_path("smoke").read_text())
    variant = copy.deepcopy(data["runs"]["hyper_wrn10_1"])
    variant.update(pretrain_from="hyper_wrn10_1", **variant_edits)
    variant["meta_train"]["maml"]["other_weights"] = "outer"
    data["runs"]["hyper_outer"] = variant
    path = tmp_path / "variant.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def test_a_variant_shares_the_pretraining_it_names_seed_by_seed_and_shot_by_shot(tmp_path):
    suite = load_suite(_suite_with_variant(tmp_path), [*PER_SHOT, "seeds=[0, 1]"])
    assert suite.runs["hyper_outer-2shot-s1"].pretrain_from == "hyper_wrn10_1-1shot-s1"
    assert pretraining_siblings(suite, "hyper_outer-1shot-s1") == ["hyper_wrn10_1-1shot-s1", "hyper_wrn10_1-2shot-s1",
                                                                  "hyper_outer-2shot-s1"]
    pretrain = {run: config_hash(stage_config(suite, run, "pretrain")) for run in suite.runs}
    assert pretrain["hyper_outer-2shot-s1"] == pretrain["hyper_wrn10_1-1shot-s1"] != pretrain["hyper_wrn10_1-1shot-s0"]
    meta = {run: config_hash(stage_config(suite, run, "meta_train")) for run in suite.runs}
    assert meta["hyper_outer-1shot-s0"] != meta["hyper_wrn10_1-1shot-s0"]  # other_weights enters the hash


def test_a_variant_pretrained_otherwise_or_naming_no_run_is_refused(tmp_path):
    suite = load_suite(_suite_with_variant(tmp_path, augment=True), SMOKE)
    with pytest.raises(ConfigError, match=r"runs.hyper_outer.pretrain_from: run 'hyper_wrn10_1' is pretrained with "
                                          r"other settings \(augment differ"):
        plan_suite(suite, tmp_path / "out", runs=["hyper_outer"])
    with pytest.raises(ConfigError, match="runs.wrn10_1.pretrain_from = 'nothing': no run 'nothing'"):
        load_suite("smoke", [*SMOKE, "runs.wrn10_1.pretrain_from=nothing"])


def test_a_worker_holding_only_its_run_links_the_pretraining_found_in_the_suite_folder(tmp_path):
    """``--jobs`` workers load a run folder's one-run suite (``config.yaml``), which does not hold
    the sibling whose pretraining the run shares: the sibling is found on disk by its stage hash."""
    suite = load_suite("smoke", PER_SHOT)
    run_suite(suite, tmp_path, runs=["wrn10_1-1shot"], stages=["pretrain"], progress=False, report=False)
    save_yaml(suite.only("wrn10_1-2shot"), tmp_path / "runs" / "wrn10_1-2shot" / "config.yaml")  # as the pool does
    one_run = load_suite(tmp_path / "runs" / "wrn10_1-2shot" / "config.yaml")
    assert list(one_run.runs) == ["wrn10_1-2shot"] and one_run.runs["wrn10_1-2shot"].pretrain_from == "wrn10_1-1shot"
    run_suite(one_run, tmp_path, runs=["wrn10_1-2shot"], stages=["pretrain"], progress=False, report=False)
    marker = json.loads((tmp_path / "runs/wrn10_1-2shot/pretrain/done.json").read_text())
    assert marker["shared_from"] == "wrn10_1-1shot"
