"""Classification suites: schema errors before work, a tiny suite end to end, rerun skipping."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest

from metahyper.classify import is_classify_output, load_classify_suite, rebuild_classify_report, run_classify_suite
from metahyper.classify import suite as suite_module
from metahyper.config import ConfigError, from_dict, save_yaml
from metahyper.classify.suite import ClassifySuite, check_suite

REPO = Path(__file__).resolve().parents[2]


def tiny_suite(root) -> dict:
    return {
        "kind": "classify", "name": "tiny", "seeds": [0, 1], "device": "cpu",
        "data": {"dataset": "cifar10", "root": str(root)},
        "train": {"epochs": 2, "batch_size": 50, "milestones": [1], "eval_batch_size": 64},
        "models": [
            {"label": "WRN-10-1", "model": "wrn", "options": {"depth": 10, "width": 1}},
            {"label": "Hyper-WRN-10-1 (1) SWA", "model": "hyper_wrn", "options": {"depth": 10, "width": 1},
             "train": {"swa": True, "swa_start": 2}, "compress": True},
        ],
    }


def test_tiny_suite_end_to_end_and_rerun_skips(cifar10_root, tmp_path, monkeypatch):
    written = run_classify_suite(tiny_suite(cifar10_root), tmp_path)
    assert {p.name for p in written} == {"report.md", "results.csv", "results.json", "val_curves.png"}
    rows = list(csv.DictReader((tmp_path / "results.csv").open()))
    assert [(r["label"], r["seed"]) for r in rows] == [
        ("WRN-10-1", "0"), ("WRN-10-1", "1"), ("Hyper-WRN-10-1 (1) SWA", "0"), ("Hyper-WRN-10-1 (1) SWA", "1")]
    assert rows[0]["swa_accuracy"] == "" and rows[2]["swa_accuracy"] != ""
    summary = json.loads((tmp_path / "results.json").read_text())["summary"]
    accs = [float(r["test_accuracy"]) for r in rows[:2]]
    stat = summary[0]["metrics"]["test_accuracy"]
    assert stat["mean"] == pytest.approx(sum(accs) / 2) and stat["n"] == 2
    assert stat["std"] == pytest.approx(abs(accs[0] - accs[1]) / 2 ** 0.5)
    assert int(rows[2]["params_train"]) < int(rows[0]["params_train"]) + 48_000  # embeddings frozen, not counted
    report = (tmp_path / "report.md").read_text()
    assert "| WRN-10-1 | wrn |" in report and "SWA acc (%)" in report

    def refuse(*args, **kwargs):
        raise AssertionError("a finished run was trained again")

    monkeypatch.setattr(suite_module, "train_classifier", refuse)
    run_classify_suite(tiny_suite(cifar10_root), tmp_path)
    assert list(csv.DictReader((tmp_path / "results.csv").open())) == rows
    (tmp_path / "results.csv").unlink()
    assert is_classify_output(tmp_path)
    rebuild_classify_report(tmp_path)
    assert list(csv.DictReader((tmp_path / "results.csv").open())) == rows


@pytest.mark.parametrize("change, message", [
    (lambda s: s["data"].update(root=None), "data.root is not set; cifar10 needs its data folder"),
    (lambda s: s["data"].update(root="/no/such/folder"), "data.root = '/no/such/folder' does not exist"),
    (lambda s: s["models"][0]["options"].update(depht=10), r"models\[0\].options.depht"),
    (lambda s: s["models"][1]["train"].update(epochz=3), r"models\[1\].train .*'epochz'"),
    (lambda s: s["models"][1].update(model="no_such_net"), r"models\[1\].model: unknown model"),
    (lambda s: s.update(seeds=[0, 0]), "distinct seeds"),
    (lambda s: s["train"].update(seed=3), "'seed' is set by the suite's `seeds` list"),
])
def test_bad_suites_fail_before_work(cifar10_root, tmp_path, change, message):
    data = tiny_suite(cifar10_root)
    change(data)
    with pytest.raises(ConfigError, match=message):
        check_suite(from_dict(ClassifySuite, data, "suite"), "suite")
    assert not any(tmp_path.iterdir())


def test_full_suites_need_the_cifar_root_and_tiny_suites_validate(tmp_path):
    files = sorted((REPO / "benchmarks" / "suites").glob("*.yaml"))
    classify = [f for f in files if "kind: classify" in f.read_text()]
    assert len(classify) >= 16
    for path in classify:
        if path.stem.endswith("-tiny"):
            load_classify_suite(path)
            continue
        with pytest.raises(ConfigError, match="data.root is not set"):
            load_classify_suite(path)
        suite = load_classify_suite(path, [f"data.root={tmp_path}"])
        assert suite.train.get("epochs", 200) == 200 and len(suite.seeds) == 3
        assert (REPO / "benchmarks" / "suites" / f"{path.stem}-tiny.yaml").is_file(), path.name


def test_suite_file_round_trip(cifar10_root, tmp_path):
    data = tiny_suite(cifar10_root)
    save_yaml(data, tmp_path / "suite.yaml")
    suite = load_classify_suite(tmp_path / "suite.yaml", ["seeds=[4]"])
    assert suite.seeds == (4,) and suite.models[1].compress
