"""Tests for metahyper.eval.report/records/plots: files written, numbers right, failures safe."""

import csv
import json
import math

import numpy as np
import pytest
from matplotlib.figure import Figure
from scipy import stats as sps

from metahyper.config import ConfigError
from metahyper.eval.movement import layer_movement
from metahyper.eval.plots import series
from metahyper.eval.records import ResultRecord, as_record, find_pairs
from metahyper.eval.report import write_report

ENV = {"python": "3.x", "torch": "t", "numpy": "n", "metahyper": "m", "device": "cpu"}
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def make_record(model, target="mini-test", shot=1, base=0.5, seed=0, episodes="h1", rng_seed=0, **extra):
    accuracies = np.clip(np.random.default_rng(rng_seed).normal(base, 0.1, 60), 0, 1).round(4)
    return dict(model=model, source="fc100-train", target=target, way=5, shot=shot, bn_mode="transductive",
                per_episode=accuracies.tolist(), episodes_hash=episodes, seed=seed,
                config={"model": {"name": model}, "lr": 1e-3}, **extra)


def pm(values):
    """'xx.xx ± yy.yy' computed independently with scipy.stats.t.interval."""
    values = np.asarray(values)
    low, high = sps.t.interval(0.95, len(values) - 1, loc=values.mean(), scale=sps.sem(values))
    return f"{100 * values.mean():.2f} ± {100 * (high - low) / 2:.2f}"


@pytest.fixture
def records():
    return [
        make_record("resnet12", rng_seed=1),
        make_record("hyper_resnet12", base=0.55, rng_seed=2),
        make_record("resnet12", shot=5, base=0.7, episodes="h5", rng_seed=3),
        make_record("hyper_resnet12", shot=5, base=0.72, episodes="h5", rng_seed=4),
        make_record("protonet", rng_seed=5),
    ]


def test_markdown_tables_and_statements(tmp_path, records):
    write_report(records, tmp_path, environment=ENV, n_boot=500)
    text = (tmp_path / "report.md").read_text()
    for record in records:
        assert pm(record["per_episode"]) in text
    assert "95% CI = t_{0.975, n-1} * std(ddof=1) / sqrt(n)" in text
    assert "BN mode: transductive" in text
    assert "| mini-test 5-way 1-shot | mini-test 5-way 5-shot |" in text
    a, b = np.array(records[1]["per_episode"]), np.array(records[0]["per_episode"])
    d = a - b
    half = sps.t.ppf(0.975, len(d) - 1) * d.std(ddof=1) / math.sqrt(len(d))
    assert f"{100 * d.mean():+.2f} ± {100 * half:.2f}" in text
    p = sps.ttest_rel(a, b).pvalue
    assert (f"{p:.4f}" if p >= 1e-4 else "<0.0001") in text
    assert text.count("| hyper_resnet12 | resnet12 | 60 |") == 2  # 1-shot and 5-shot pairs; protonet unpaired


def test_csv_round_trip(tmp_path, records):
    write_report(records, tmp_path, environment=ENV, n_boot=200)
    with open(tmp_path / "results.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert [row["model"] for row in rows] == [r["model"] for r in records]
    for row, record in zip(rows, records):
        values = np.array(record["per_episode"])
        low, high = sps.t.interval(0.95, len(values) - 1, loc=values.mean(), scale=sps.sem(values))
        assert float(row["mean"]) == pytest.approx(values.mean(), rel=1e-12)
        assert float(row["ci95"]) == pytest.approx((high - low) / 2, rel=1e-9)
        assert (int(row["n"]), int(row["shot"])) == (60, record["shot"])
        assert row["episodes_hash"] == record["episodes_hash"]
        assert len(row["config_hash"]) == 64


def test_json_contents(tmp_path, records):
    write_report(records, tmp_path, environment=ENV, n_boot=300, seed=3)
    document = json.loads((tmp_path / "results.json").read_text())
    assert document["environment"] == ENV
    assert "t_{0.975, n-1}" in document["ci_formula"]
    first = document["results"][0]
    assert first["per_episode"] == records[0]["per_episode"]
    assert (first["config"], first["seed"], first["episodes_hash"]) == (records[0]["config"], 0, "h1")
    paired = document["paired"]
    assert [(c["hyper"], c["plain"], c["shot"]) for c in paired] == [("hyper_resnet12", "resnet12", 1),
                                                                   ("hyper_resnet12", "resnet12", 5)]
    assert paired[0]["p_value"] == pytest.approx(sps.ttest_rel(records[1]["per_episode"],
                                                                records[0]["per_episode"]).pvalue)
    assert (paired[0]["n_boot"], paired[0]["bootstrap_seed"], paired[0]["seed"]) == (300, 3, 0)
    assert paired[0]["boot_low"] < paired[0]["diff"] < paired[0]["boot_high"]


def test_default_environment_has_versions_and_device(tmp_path, records):
    write_report(records[:1], tmp_path, n_boot=10)
    environment = json.loads((tmp_path / "results.json").read_text())["environment"]
    assert {"python", "torch", "numpy", "metahyper", "device"} <= set(environment)


def test_pairs_need_the_same_episodes_and_seed():
    plain = as_record(make_record("resnet12"))
    other_episodes = as_record(make_record("hyper_resnet12", episodes="h2"))
    other_seed = as_record(make_record("hyper_resnet12", seed=1))
    explicit = as_record(make_record("my_hyper_v1", baseline="resnet12"))
    pairs, notes = find_pairs([plain, other_episodes, other_seed, explicit])
    assert [(h.model, p.model) for h, p in pairs] == [("my_hyper_v1", "resnet12")]
    assert len(notes) == 2 and all("no resnet12 result on the same episodes" in note for note in notes)


@pytest.mark.parametrize("model, baseline", [("hyper_resnet12", "resnet12"), ("HyperResNet-12", "ResNet-12"),
                                             ("resnet12", None), ("hyper", None)])
def test_baseline_inferred_from_name(model, baseline):
    assert as_record(make_record(model)).baseline_model() == baseline


def test_bad_records_fail_before_anything_is_written(tmp_path, records):
    bad = make_record("resnet12", target="other")
    bad["bn_mode"] = "batch"
    with pytest.raises(ConfigError, match=r"result 5: bn_mode: expected one of \['transductive', 'inductive'"):
        write_report(records + [bad], tmp_path / "out")
    del records[1]["episodes_hash"]
    with pytest.raises(ConfigError, match="result 1: missing key 'episodes_hash'"):
        write_report(records, tmp_path / "out")
    out_of_range = make_record("m")
    out_of_range["per_episode"][3] = 1.5
    with pytest.raises(ConfigError, match=r"result 0: ResultRecord: per-episode accuracy 1.5 at episode 3"):
        write_report([out_of_range], tmp_path / "out")
    with pytest.raises(ValueError, match="results 0 and 1 are both resnet12"):
        write_report([make_record("resnet12"), make_record("resnet12", rng_seed=9)], tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_accepts_dataclass_records(tmp_path):
    record = ResultRecord(**{**make_record("resnet12"), "per_episode": (0.5, 0.6, 0.7)})
    assert as_record(record) is record
    write_report([record], tmp_path, environment=ENV)
    assert "60.00 ± 24.84" in (tmp_path / "report.md").read_text()


def make_metrics(model, keys=("val", "movement", "norm_grad_ratio")):
    """Records shaped like metahyper.meta.train's log (train steps, diagnostics, val steps)."""
    generated = "hyper" in model
    records = []
    for iteration in range(10, 101, 10):
        train = {"kind": "train", "iteration": iteration, "loss": 1.0, "accuracy": 0.5, "lr": 1e-3}
        if "movement" in keys and generated:
            train["movement"] = {"param/emb1": 3.0, "generated/layer1.0.conv1": 0.2, "param/fc.weight": 0.1}
        elif "movement" in keys:
            train["movement"] = {"param/layer1.0.conv1.weight": 0.01, "param/layer1.0.conv1.bias": 5.0,
                                 "param/fc.weight": 0.05}
        if "norm_grad_ratio" in keys:
            role = "hypernet" if generated else "body"
            train["norm_grad_ratio"] = {role: 100.0 + iteration, "classifier": 10.0}
        records.append(train)
        if "val" in keys:
            records.append({"kind": "val", "iteration": iteration, "accuracy": 0.3 + iteration / 500})
    return records


def test_series_filters_sorts_and_lets_later_records_win():
    records = [
        {"kind": "val", "iteration": 20, "accuracy": 0.5},
        {"kind": "train", "iteration": 20, "accuracy": 0.9},
        {"kind": "val", "iteration": 10, "accuracy": 0.4},
        {"kind": "val", "iteration": 20, "accuracy": 0.55},
        {"kind": "val", "iteration": 30, "accuracy": float("nan")},
        {"kind": "val", "accuracy": 0.9},
    ]
    assert series(records, "accuracy", kind="val") == ([10, 20], [0.4, 0.55])
    assert series(records, "accuracy") == ([10, 20], [0.4, 0.55])
    assert series(records, "movement") == ([], [])


def test_layer_movement_lines_up_generated_and_plain_weights():
    movement = {"generated/layer1.conv": 0.2, "param/emb": 3.0, "param/fc.weight": 0.1, "param/fc.bias": 1.0,
                "param/layer2.conv.weight": 0.3}
    assert layer_movement(movement) == {"layer1.conv": 0.2, "fc": 0.1, "layer2.conv": 0.3}


def test_no_validation_curve_says_what_to_set(tmp_path, records):
    metrics = {model: make_metrics(model, keys=("movement", "norm_grad_ratio")) for model in ("resnet12",)}
    write_report(records, tmp_path, metrics=metrics, environment=ENV, n_boot=50)
    text = (tmp_path / "report.md").read_text()
    assert "skipped: no run logged a validation accuracy; set data.val_split" in text
    assert not (tmp_path / "val_curves.png").exists()


def test_figures_written_and_linked(tmp_path, records):
    metrics = {model: make_metrics(model) for model in ("resnet12", "hyper_resnet12")}
    written = write_report(records, tmp_path, metrics=metrics, environment=ENV, n_boot=50)
    text = (tmp_path / "report.md").read_text()
    for name in ("val_curves.png", "movement.png", "norm_ratio.png"):
        data = (tmp_path / name).read_bytes()
        assert data.startswith(PNG_MAGIC) and len(data) > 10_000
        assert f"]({name})" in text
        assert tmp_path / name in written
    assert "## Notes" not in text


def test_missing_metric_keys_skip_plots_with_notes(tmp_path, records):
    metrics = {"hyper_resnet12": make_metrics("hyper_resnet12", keys=("val",)), "resnet12": []}
    write_report(records, tmp_path, metrics=metrics, environment=ENV, n_boot=50)
    text = (tmp_path / "report.md").read_text()
    assert "(val_curves.png)" in text
    assert "skipped: no run logged the inner-loop movement of its weights; set meta_train.diagnostics_every" in text
    assert "skipped: no run logged ||P|| / ||grad P||; set meta_train.diagnostics_every" in text
    assert "metrics record" not in text.replace("no metrics records for resnet12", "")  # no internal terms
    assert "no metrics records for resnet12" in text
    assert not (tmp_path / "movement.png").exists()
    write_report(records, tmp_path, environment=ENV, n_boot=50)  # rebuilt without metrics
    assert "Validation accuracy (paper Figure 5) skipped" in (tmp_path / "report.md").read_text()
    assert not (tmp_path / "val_curves.png").exists()  # no stale figure left behind


def test_failed_rewrite_keeps_previous_files(tmp_path, records, monkeypatch):
    metrics = {"hyper_resnet12": make_metrics("hyper_resnet12")}
    write_report(records, tmp_path, metrics=metrics, environment=ENV, n_boot=50)
    before = {p.name: p.read_bytes() for p in tmp_path.iterdir()}

    def broken_savefig(self, handle, **kwargs):
        handle.write(PNG_MAGIC + b"half a picture")
        raise OSError("disk full")

    monkeypatch.setattr(Figure, "savefig", broken_savefig)
    with pytest.raises(OSError, match="disk full"):
        write_report(records[:2], tmp_path, metrics=metrics, environment=ENV, n_boot=50)
    after = {p.name: p.read_bytes() for p in tmp_path.iterdir()}
    assert after == before


def test_rejects_empty_record_list(tmp_path):
    with pytest.raises(ValueError, match="at least one result record"):
        write_report([], tmp_path)
