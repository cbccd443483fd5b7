"""The Omniglot full-archive suites and omniglot-to-mnist at toy size on generated files in the
real layouts (CI has no full archives); each runs one run through all three stages."""

from __future__ import annotations

import json

import pytest
from data.archives import mnist_files, omniglot_zip
from tiny_suites import TRAINING

from metahyper.data.splits import split_info
from metahyper.pipeline.runs import run_suite
from metahyper.suite.config import load_suite

LAKE = split_info("omniglot")["protocols"]["lake"]
TOY = TRAINING + ["data.image_size=16", "targets.*.image_size=16", "evaluation.baselines={nearest_centroid: {}}"]


@pytest.fixture(scope="module")
def omniglot_root(tmp_path_factory):
    """Full archives with the real alphabet names, 2 characters of 4 images each."""
    root = tmp_path_factory.mktemp("omniglot")
    omniglot_zip(root / "images_background.zip", {a: 2 for a in LAKE["train"]}, per_char=4)
    omniglot_zip(root / "images_evaluation.zip", {a: 2 for a in LAKE["test"]}, per_char=4)
    return root


@pytest.mark.parametrize("suite, run, options", [
    ("omniglot-lake", "hyper_conv4-5way", "{protocol: lake, images_per_class: 4, characters: 0}"),
    ("omniglot-maml", "conv4-20way", "{protocol: maml, images_per_class: 4, characters: 0, train_characters: 60}"),
])
def test_full_omniglot_suites(omniglot_root, tmp_path, suite, run, options):
    overrides = TOY + [f"data.root={omniglot_root}", f"targets.*.root={omniglot_root}",
                       f"data.options={options}", f"targets.*.options={options}"]
    run_suite(load_suite(suite, overrides), tmp_path, runs=[run], progress=False)
    results = json.loads((tmp_path / "results.json").read_text())["results"]
    assert {(r["model"], r["way"], r["shot"]) for r in results} == {
        (run, int(run.split("-")[1][:-3]), 1), (f"{run}+nearest_centroid", int(run.split("-")[1][:-3]), 1)}


def test_omniglot_to_mnist_suite(tmp_path):
    small = {a: 5 for a in split_info("omniglot")["train"] + split_info("omniglot")["val"]}
    omniglot_zip(tmp_path / "images_background_small1.zip", small, per_char=4)
    mnist = tmp_path / "mnist"
    mnist.mkdir()
    mnist_files(mnist, {"t10k": 40})
    overrides = TOY + [f"data.root={tmp_path}", f"targets.*.root={mnist}", "data.images_per_class=4", "seeds=[0]"]
    run_suite(load_suite("omniglot-to-mnist", overrides), tmp_path / "out", runs=["hyper_conv4-frozen"], progress=False)
    results = json.loads((tmp_path / "out" / "results.json").read_text())["results"]
    # one seed (the suite's three cut to seed 0): the model and its nearest-centroid baseline
    assert {r["target"] for r in results} == {"mnist"} and len(results) == 2
    assert {r["seed"] for r in results} == {0}
