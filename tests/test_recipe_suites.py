"""Issue 26's recipe levers as suite settings, end to end on the tiny smoke suite: Meta-Baseline
after cosine-head pretraining, composed augmentations, support-set test-time augmentation and
soft k-means as rows of their own, and seed ensembles rebuilt from the stored probabilities; bad
values of each setting exit 2 naming the field before any work."""

from __future__ import annotations

import json

import numpy as np
import pytest
from cli_run import run_cli
from tiny_suites import SMOKE

from metahyper.api import load_run
from metahyper.config import config_hash
from metahyper.pipeline.runs import plan_suite
from metahyper.pipeline.stages import STAGES, stage_config
from metahyper.suite.config import load_suite

RECIPE = ["method=meta_baseline", "pretrain.head=cosine", "meta_augment=affine+stroke+elastic+erase",
          "augment=stroke", "evaluation.support_augment={copies: 2, augment: stroke+elastic}",
          "evaluation.soft_kmeans_steps=1", "evaluation.seed_ensemble=true", "seeds=[0,1]",
          "compute={channels_last: true, autocast: bfloat16}"]


def test_the_recipe_settings_run_end_to_end_with_their_rows_and_seed_ensembles(capsys, tmp_path):
    out = tmp_path / "recipes"
    status, _, err = run_cli(capsys, "run", "smoke", *SMOKE, *RECIPE, "--out", str(out))
    assert status == 0, err
    results = json.loads((out / "results.json").read_text())["results"]
    models = {r["model"]: r["config"]["evaluation"]["predictor"] for r in results}
    for run in ("wrn10_1", "hyper_wrn10_1"):
        assert models[run] == "meta_baseline" and models[f"{run}+soft_kmeans"] == "meta_baseline+soft_kmeans"
        assert models[f"{run}+tta+soft_kmeans"] == "meta_baseline+tta+soft_kmeans"
        assert models[f"{run}+nearest_centroid+tta"] == "nearest_centroid+tta"
        assert models[f"{run}+logistic_regression+tta"] == "logistic_regression+tta"
        assert f"{run}+logistic_regression+soft_kmeans" not in models  # soft k-means needs prototypes
        assert models[f"{run}+seed_ensemble"] == "meta_baseline+seed_ensemble"
    ensemble = next(r for r in results if r["model"] == "wrn10_1+soft_kmeans+seed_ensemble")
    assert ensemble["seed"] == -1 and ensemble["config"]["evaluation"]["ensemble_seeds"] == [0, 1]
    # the ensemble by hand: average the two seeds' stored probabilities, take the argmax per query
    probabilities = []
    for seed in (0, 1):
        folder = out / "runs" / f"wrn10_1-s{seed}" / "evaluate"
        names = [r["model"] for r in json.loads((folder / "results.json").read_text())]
        with np.load(folder / "probabilities.npz") as stored:
            i = names.index("wrn10_1+soft_kmeans")
            probabilities.append(stored[f"probabilities_{i}"].astype(float))
            labels = stored[f"labels_{i}"]
    by_hand = ((probabilities[0] + probabilities[1]).argmax(-1) == labels).mean(-1)
    np.testing.assert_allclose(ensemble["per_episode"], by_hand)
    pairs = {(p["hyper"], p["plain"]) for p in json.loads((out / "results.json").read_text())["paired"]}
    assert ("hyper_wrn10_1+seed_ensemble", "wrn10_1+seed_ensemble") in pairs
    report = (out / "report.md").read_text()
    assert "| wrn10_1+tta | meta_baseline+tta |" in report and "cosine head" in report
    model = load_run(out, run="wrn10_1-s0")  # the temperature comes back beyond the model's recipe
    assert model.metric_scale.item() > 0 and "metric_scale" in dict(model.named_parameters())


def test_recipe_settings_enter_the_hashes_only_when_set():
    plain, recipe = load_suite("smoke"), load_suite("smoke", RECIPE[:6])
    evaluate = stage_config(recipe, "wrn10_1", "evaluate")["evaluation"]
    assert evaluate["support_augment"] == {"copies": 2, "augment": "stroke+elastic", "seed": 0}
    assert evaluate["soft_kmeans_steps"] == 1 and "seed_ensemble" not in evaluate
    assert stage_config(recipe, "wrn10_1", "pretrain")["pretrain"]["head"] == "cosine"
    assert "head" not in stage_config(plain, "wrn10_1", "pretrain")["pretrain"]
    assert "support_augment" not in stage_config(plain, "wrn10_1", "evaluate")["evaluation"]
    assert config_hash(stage_config(load_suite("smoke", ["pretrain.head=linear"]), "wrn10_1", "pretrain")) == \
        config_hash(stage_config(plain, "wrn10_1", "pretrain"))
    fast = load_suite("smoke", ["compute.autocast=bfloat16"])
    assert all(stage_config(fast, "wrn10_1", stage)["compute"] == {"autocast": "bfloat16"} for stage in STAGES)
    assert all("compute" not in stage_config(plain, "wrn10_1", stage) for stage in STAGES)


@pytest.mark.parametrize("override, message", [
    ("pretrain.head=arcface", "pretrain: PretrainConfig.head must be one of ('linear', 'cosine')"),
    ("meta_augment=affine+elastc", "runs.wrn10_1: meta_augment: augment must be true, false, or one of"),
    ("evaluation.support_augment={copies: 0}", "evaluation.support_augment: copies must be an int >= 1"),
    ("evaluation.support_augment={copies: 2, augment: crop_flip}", "evaluation.support_augment: augment: "),
    ("evaluation.soft_kmeans_steps=-1", "evaluation: soft_kmeans_steps must be >= 0"),
    ("compute.autocast=int8", "compute: autocast must be null or one of ['bfloat16', 'float16']"),
    ("runs.wrn10_1.model.options={depth: 10, width: 1, widht: 2}", "no option 'widht'"),
])
def test_bad_recipe_settings_exit_2_naming_the_field(capsys, tmp_path, override, message):
    status, _, err = run_cli(capsys, "run", "smoke", *SMOKE, override, "--out", str(tmp_path / "out"))
    assert status == 2 and message in err, err
    assert not (tmp_path / "out" / "runs").exists()


def test_the_draft_recipe_suite_compares_the_levers_on_the_latin_validation_alphabet_only(monkeypatch):
    monkeypatch.setenv("METAHYPER_DATA", "/nowhere")
    suite = load_suite("omniglot-minimal-recipes")
    assert {(t.split, t.groups) for t in suite.targets.values()} == {("val", "alphabet")}  # never the test alphabets
    assert suite.data.split == "train" and suite.data.val_split == "val"
    methods = {run: spec.method for run, spec in suite.runs.items()}
    assert methods["mb-s0"] == "meta_baseline" and suite.runs["mb-s0"].pretrain.head == "cosine"
    assert suite.runs["pn-w128-s0"].model.options == {"width": 128}
    assert suite.runs["hyper_mb-s0"].compare_with == "mb"
    finalists = load_suite("omniglot-minimal-recipes", ["seeds=[0,1,2]"])
    assert {"pn-s2", "hyper_mb-s1"} <= set(finalists.runs)


@pytest.mark.realdata
def test_the_draft_recipe_suite_passes_every_check_on_the_real_data(omniglot_dir, tmp_path):
    """Everything checked before work (stores, within-alphabet episodes, models on 1-channel images)."""
    suite = load_suite("omniglot-minimal-recipes", [f"data.root={omniglot_dir}", f"targets.*.root={omniglot_dir}"])
    plan = plan_suite(suite, tmp_path / "out", progress=False)
    assert len(plan.pending) == 3 * len(suite.runs)
    assert plan.ws.store("targets.latin", suite.targets["latin"]).num_classes == 26


FINALISTS_AT_56 = ["data.image_size=56", "targets.*.image_size=56"]  # the resolution chosen on Latin


def training_stages(suite, run: str, unused: tuple[str, ...] = ()) -> dict:
    """``run``'s pretrain and meta_train stage configs without their run names and the settings in
    ``unused`` (dotted), so that runs of two suites compare by what they train."""
    stages = {}
    for stage in ("pretrain", "meta_train"):
        config = stage_config(suite, run, stage)
        config.pop("run")
        config.pop("after", None)
        for dotted in unused:
            section, key = dotted.split(".")
            config.get(section, {}).pop(key, None)
        stages[stage] = config
    return stages


def test_omniglot_minimal_carries_the_recipe_the_finalists_chose(monkeypatch):
    """``metahyper run omniglot-minimal`` reproduces the chosen finalists at 56 pixels: the ProtoNet
    pair of benchmarks/results/omniglot-minimal-recipes/finalists.yaml and the MAML pair of
    maml-finalists.yaml beside it (the same data, training stages and evaluation rows)."""
    monkeypatch.setenv("METAHYPER_DATA", "/nowhere")
    suite = load_suite("omniglot-minimal")
    finalists = load_suite("benchmarks/results/omniglot-minimal-recipes/finalists.yaml", FINALISTS_AT_56)
    maml = load_suite("benchmarks/results/omniglot-minimal-recipes/maml-finalists.yaml", FINALISTS_AT_56)
    protonet_unused = ("pretrain.output_norm_penalty", "meta_train.maml")  # no pretraining, no inner loop
    for ours, theirs in (("conv4-protonet-s1", "pn-s1"), ("hyper_conv4-protonet-s1", "hyper_pn-s1")):
        assert suite.runs[ours].method == finalists.runs[theirs].method == "protonet"
        assert training_stages(suite, ours, protonet_unused) == training_stages(finalists, theirs, protonet_unused)
    for ours, theirs in (("conv4-maml-s1", "maml-s1"), ("hyper_conv4-maml-s1", "hyper_maml-s1")):
        assert suite.runs[ours].method == maml.runs[theirs].method == "maml"
        assert suite.runs[ours].pretrain.epochs == 20 and suite.runs[ours].augment == "affine"
        assert training_stages(suite, ours) == training_stages(maml, theirs)
    for setting in ("support_augment", "soft_kmeans_steps", "seed_ensemble", "episodes", "query", "bn_mode"):
        assert getattr(suite.evaluation, setting) == getattr(finalists.evaluation, setting), setting
        assert getattr(suite.evaluation, setting) == getattr(maml.evaluation, setting), setting
    assert suite.evaluation.inner_steps_eval == maml.evaluation.inner_steps_eval == 5  # MAML's test-time steps
    for finalist in (finalists, maml):
        assert suite.data == finalist.data and suite.targets["latin"] == finalist.targets["latin"]
        assert suite.targets["small2-alphabets"] == finalist.targets["small2-alphabets"]
