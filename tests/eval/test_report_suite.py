"""A report readable without the README: the suite's title and description, how it was made,
the data, where each setting comes from, the paper's numbers beside ours with the protocol
differences, which shot made which cell, and one name per model in every table. Records and
the saved suite are made by hand; every expected line below is written out from them."""

from __future__ import annotations

import copy
import json
import re
import subprocess
from datetime import datetime, timezone
from pathlib import Path

import pytest

from metahyper.config import to_dict
from metahyper.eval import records as records_module
from metahyper.eval.records import package_commit
from metahyper.eval.report import write_report
from metahyper.eval.suite_info import data_section, made_line
from metahyper.suite.config import load_suite
from metahyper.suite.paper import PaperResult

ENV = {"metahyper": "9.9", "commit": "abc123", "device": "cpu"}
PROVENANCE = {"evaluation.episodes": {"source": "ours", "ref": "fewer than the paper's 2000, for CI"},
              "meta_train.maml.inner_lr": {"source": "paper", "ref": "Section 4.2"},
              "episodes.shot": {"source": "paper", "ref": "Table 8: 1- and 5-shot"},
              "model.options.variant": {"source": "paper", "ref": "Table 8: variant 1"}}
PAPER = [PaperResult("wrn10_1", 5, 1, "Babu et al. Table 8", accuracy=40.75, note="WRN-16-4, 3 runs averaged"),
         PaperResult("hyper_wrn10_1", 5, 5, "Babu et al. Table 8", accuracy=58.66)]


def saved_suite() -> dict:
    """The smoke suite as a suite folder saves it, with the plain model meta-trained once per
    shot (runs wrn10_1-1shot and wrn10_1-5shot, each evaluated at its shot) and the hyper model
    meta-trained on 1-shot tasks only (evaluated at 1 and 5 shots)."""
    suite = to_dict(load_suite("smoke"))
    plain = suite["runs"].pop("wrn10_1")
    for shot in (1, 5):
        run = copy.deepcopy(plain)
        run["episodes"]["shot"], run["report_name"] = shot, "wrn10_1"
        suite["runs"][f"wrn10_1-{shot}shot"] = run
    suite["provenance"] = PROVENANCE
    return suite


def record(suite: dict, run: str, shot: int, accuracies: list[float]) -> dict:
    """A result record as the evaluate stage makes it: its config holds the one-run suite."""
    spec = suite["runs"][run]
    one = {k: v for k, v in suite.items() if k not in ("logging", "launcher", "paper", "provenance")}
    return dict(model=spec["report_name"] or run, source="synthetic-source", target="synthetic-target", way=5,
                shot=shot, bn_mode="transductive", per_episode=accuracies, episodes_hash=f"h{shot}", seed=0,
                config={"run": {**one, "runs": {run: spec}}, "evaluation": {"predictor": "maml"}})


def movement(key: str, value: float) -> list[dict]:
    return [{"kind": "train", "iteration": i, "movement": {key: value}} for i in (1, 2)]


@pytest.fixture(scope="module")
def folder(tmp_path_factory) -> Path:
    """The report of the hand-made records, written once for the tests of this module."""
    tmp_path = tmp_path_factory.mktemp("report")
    suite = saved_suite()
    found = [record(suite, "wrn10_1-1shot", 1, [0.4, 0.6]), record(suite, "wrn10_1-5shot", 5, [0.6, 0.8]),
             record(suite, "hyper_wrn10_1", 1, [0.5, 0.7]), record(suite, "hyper_wrn10_1", 5, [0.7, 0.7])]
    metrics = {"hyper_wrn10_1": movement("generated/stages.1.0.conv2", 0.3),
               **{f"wrn10_1-{k}shot": movement("param/stages.1.0.conv2.weight", 0.1) for k in (1, 5)}}
    markers = [{"stage": "pretrain", "seconds": 30.0, "cpu_seconds": 55.0, "device": "cpu", "threads": 2},
               {"stage": "pretrain", "seconds": 45.0, "device": "cpu", "threads": 2},
               {"stage": "meta_train", "seconds": 3000.0, "cpu_seconds": 4800.0, "device": "cuda: H100", "threads": 2},
               {"stage": "evaluate", "seconds": 12.5, "device": "cuda: H100", "threads": 2}]
    write_report(found, tmp_path, metrics=metrics, environment=ENV, n_boot=20, paper=PAPER, suite=suite,
                 markers=markers)
    return tmp_path


@pytest.fixture
def report(folder) -> str:
    return (folder / "report.md").read_text()


def section(text: str, title: str) -> str:
    return text.split(f"{title}\n\n")[1].split("\n## ")[0]


def test_title_description_and_how_the_report_was_made(report):
    assert report.startswith("# smoke\n\nPipeline check: synthetic source -> synthetic target, WRN-10-1 vs "
                             "Hyper-WRN-10-1 (1).\n\n")
    today = datetime.now(timezone.utc).date().isoformat()
    # pretraining 30 + 45 s wall, CPU time in one marker only; meta-training 3000 s = 50 min, 4800 s = 80 min
    assert (f"_Made with metahyper 9.9 (git abc123); report of {today} · devices: cpu, cuda: H100 · CPU threads per "
            "process: 2 · compute summed over the runs: pretraining (2 runs): 75.0 s wall, 55.0 s CPU (of 1 of them); "
            "meta-training (1 run): 50.0 min wall, 80.0 min CPU; evaluation (1 run): 12.5 s wall._") in report


def test_data_section_of_the_suite(report):
    data = section(report, "## Data")
    # smoke.yaml: synthetic source family, 32 classes of 40 images at 32x32, validated on its val split
    assert ("| source (pretraining, meta-training) | synthetic | train | 32x32 | family: source, num_classes: 32, "
            "images_per_class: 40 | any classes | generated |") in data
    assert "| source validation (curve during meta-training) | synthetic | val | 32x32 |" in data
    assert "| target synthetic-target (evaluation) | synthetic | test | 32x32 | family: target, images_per_class: 40 |" \
        in data


def test_settings_provenance_table_with_values_per_model(report):
    table = section(report, "### Where each setting comes from")
    assert "| `evaluation.episodes` | 80 | ours | fewer than the paper's 2000, for CI |" in table
    assert "| `meta_train.maml.inner_lr` | 0.1 | paper | Section 4.2 |" in table
    # the plain model's two runs were meta-trained at 1 and 5 shots, the hyper model's one at 1
    assert "| `episodes.shot` | 1 (hyper_wrn10_1); 1 / 5 (wrn10_1) | paper | Table 8: 1- and 5-shot |" in table
    assert "| `model.options.variant` | 1 (hyper_wrn10_1) | paper | Table 8: variant 1 |" in table


def test_paper_numbers_beside_ours_with_the_protocol_differences_under_the_table(report):
    headline = section(report, "## Headline: accuracy (%)")
    assert ("| wrn10_1 | maml | 50.00 ± 127.06 | 70.00 ± 127.06 |\n"
            "| wrn10_1 (Babu et al. Table 8) | paper | 40.75 | – |\n"
            "| hyper_wrn10_1 | maml | 60.00 ± 127.06 | 70.00 ± 0.00 |\n"
            "| hyper_wrn10_1 (Babu et al. Table 8) | paper | – | 58.66 |\n\n"
            "Protocol differences between the published numbers and ours:\n"
            "- wrn10_1 (Babu et al. Table 8): WRN-16-4, 3 runs averaged\n"
            "- `evaluation.episodes` = 80: ours (fewer than the paper's 2000, for CI)") in headline


def test_which_shot_made_which_cell(report):
    headline = section(report, "## Headline: accuracy (%)")
    assert ("5-shot cells of hyper_wrn10_1: the model was meta-trained on 1-shot tasks (not comparable with "
            "per-shot results such as MAML papers', which meta-train one model per shot).") in headline
    assert "cells of wrn10_1" not in headline  # its 5-shot cell comes from its 5-shot model
    settings = section(report, "## Settings")
    assert "| wrn10_1 | maml | wrn(depth=10, width=1) |" in settings
    assert "(5-way 1-shot and 5-shot: one model per shot (meta-trained at the evaluated shot), 5 queries)" in settings
    assert "| hyper_wrn10_1 | maml | hyper_wrn(depth=10, width=1, variant=1) |" in settings
    assert "(5-way 1-shot, 5 queries)" in settings.split("| hyper_wrn10_1 |")[1]


def test_one_name_per_model_in_every_table(report):
    assert not re.search(r"wrn10_1-(1|5)shot|-s\d", report)  # no run folder anywhere
    movement = section(report, "## Inner-loop movement: generated vs plain weights (paper Figure 4)")
    # model, seed and the layer in the paper's words; the plain model's per-shot runs by their shot
    assert "| hyper_wrn10_1 | wrn10_1 (1-shot) | 0 | stage 2, block 1, conv 2 | 0.3 | 0.1 | 3 |" in movement
    assert "| hyper_wrn10_1 | wrn10_1 (5-shot) | 0 | stage 2, block 1, conv 2 | 0.3 | 0.1 | 3 |" in movement


def test_no_provenance_table_without_a_provenance_section(tmp_path):
    suite = saved_suite()
    suite["provenance"] = {}
    write_report([record(suite, "hyper_wrn10_1", 1, [0.5, 0.7])], tmp_path, environment=ENV, n_boot=20, suite=suite)
    text = (tmp_path / "report.md").read_text()
    assert "Where each setting comes from" not in text and "Protocol differences" not in text
    write_report([record(suite, "hyper_wrn10_1", 1, [0.5, 0.7])], tmp_path, environment=ENV, n_boot=20)
    assert (tmp_path / "report.md").read_text().startswith("# smoke\n\n")  # from the record's own suite


def test_data_section_names_files_splits_sizes_options_and_groups():
    suite = {"data": {"dataset": "omniglot", "root": "/data/omniglot", "split": "train", "val_split": "val",
                      "val_groups": "alphabet", "image_size": 28, "options": {"rotations": ["train"]}},
             "targets": {"mnist": {"dataset": "mnist", "root": "/data/mnist", "split": "test", "image_size": 28,
                                   "options": {"invert": True}},
                         "lake-runs": {"dataset": "omniglot_lake_runs", "root": "/data/lake", "split": "test",
                                       "optional": True}}}
    lines = data_section(suite)
    # data_splits/omniglot.json: train Balinese, Early_Aramaic, Greek, Korean; val Latin; mnist.json: 10 test digits
    assert lines[1].splitlines()[2:] == [
        "| source (pretraining, meta-training) | omniglot | train (Balinese, Early_Aramaic, Greek, Korean) | 28x28 | "
        "rotations: train | any classes | `/data/omniglot` |",
        "| source validation (curve during meta-training) | omniglot | val (Latin) | 28x28 | rotations: train | "
        "classes within one alphabet | `/data/omniglot` |",
        "| target mnist (evaluation) | mnist | test (10 entries) | 28x28 | invert: yes | any classes | `/data/mnist` |",
        "| target lake-runs (evaluation, optional) | omniglot_lake_runs | test | as stored | – | any classes | "
        "`/data/lake` |"]
    assert lines[2].startswith("- omniglot (data_splits/omniglot.json): Omniglot alphabets. train/val: the alphabets "
                               "of images_background_small1 (Latin held out for validation)")


def test_made_line_without_markers_names_the_environment_device():
    assert made_line({"metahyper": "1.0", "device": "cpu"}, [], "2030-01-02") == (
        "_Made with metahyper 1.0; report of 2030-01-02 · device: cpu._")


def test_package_commit_in_a_checkout_and_none_outside(tmp_path, monkeypatch):
    checkout = Path(records_module.__file__).resolve().parents[2]
    if (checkout / ".git").exists():
        head = subprocess.run(["git", "-C", str(checkout), "rev-parse", "HEAD"], capture_output=True, text=True,
                              check=True).stdout.strip()
        assert head.startswith(package_commit().removesuffix("-dirty"))
    monkeypatch.setattr(records_module, "__file__", str(tmp_path / "site-packages" / "metahyper" / "eval" / "r.py"))
    assert package_commit() is None


def test_results_json_keeps_provenance_and_layer_names(folder):
    document = json.loads((folder / "results.json").read_text())
    assert document["provenance"]["meta_train.maml.inner_lr"] == {"source": "paper", "ref": "Section 4.2"}
    assert document["layer_names"] == {"stages.1.0.conv2": "stage 2, block 1, conv 2"}
    assert document["made"].startswith("Made with metahyper 9.9 (git abc123)")
