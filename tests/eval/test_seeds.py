"""Across-seed report: mean over seeds with a t-CI over the seed means, per-seed paired
differences and their t-CI, one CSV row per seed, and the movement ratios of paired runs."""

import csv
import json

import numpy as np
import pytest
from scipy import stats as sps

from metahyper.eval.movement import movement_pairs
from metahyper.eval.report import write_report

ENV = {"python": "3.x", "device": "cpu"}
SEEDS = (0, 1, 2)


def record(model, seed, accuracies, episodes="h1"):
    return dict(model=model, source="src", target="tgt", way=5, shot=1, bn_mode="transductive",
                per_episode=list(accuracies), episodes_hash=episodes, seed=seed,
                config={"run": {"runs": {f"{model}-s{seed}": {}}}})


# Hand-made per-episode accuracies (4 episodes) per model and seed; means are exact in binary-ish
# decimals so the expected numbers below are hand arithmetic.
PLAIN = {0: [0.5, 0.6, 0.7, 0.6], 1: [0.4, 0.5, 0.5, 0.6], 2: [0.7, 0.7, 0.6, 0.6]}   # means .60 .50 .65
HYPER = {0: [0.6, 0.6, 0.8, 0.6], 1: [0.5, 0.5, 0.6, 0.6], 2: [0.7, 0.8, 0.6, 0.7]}   # means .65 .55 .70


def t_ci(values):
    """Half width of the 95% t-interval, by scipy.stats.t directly."""
    values = np.asarray(values, dtype=float)
    return sps.t.ppf(0.975, len(values) - 1) * values.std(ddof=1) / np.sqrt(len(values))


@pytest.fixture
def report(tmp_path):
    records = [record("conv", s, PLAIN[s]) for s in SEEDS] + [record("hyper_conv", s, HYPER[s]) for s in SEEDS]
    records.append(record("other", 0, [0.3, 0.4, 0.5, 0.4]))
    metrics = {f"{name}-s{s}": [{"kind": "train", "iteration": i, "movement": {key: value * i}}
                                for i in (1, 2)]
               for s in SEEDS for name, key, value in (("hyper_conv", "generated/stages.0.1.conv1", 2.0),
                                                       ("conv", "param/stages.0.1.conv1.weight", 0.5))}
    write_report(records, tmp_path, metrics=metrics, environment=ENV, n_boot=100)
    return tmp_path


def test_accuracy_table_has_per_seed_rows_and_a_mean_row_with_the_ci_over_seeds(report):
    text = (report / "report.md").read_text()
    hyper_means = [0.65, 0.55, 0.70]
    expected = f"{100 * np.mean(hyper_means):.2f} ± {100 * t_ci(hyper_means):.2f}"
    assert expected == "63.33 ± 18.97"  # sd 0.07638 over seeds, t_{0.975,2} = 4.303
    assert f"| hyper_conv | – | mean (3 seeds) | {expected} |" in text  # no method recorded
    assert all(f"| hyper_conv | – | {s} |" in text for s in SEEDS)
    assert "| other | – | mean (1 seed) | 40.00 (1 seed) |" in text
    assert "Source domain: src · BN mode: transductive (every row)." in text  # one value: not a column
    assert "t_{0.975, k-1} * std(m_s, ddof=1) / sqrt(k)" in text


def test_paired_table_across_seeds(report):
    text = (report / "report.md").read_text()
    diffs = [0.05, 0.05, 0.05]  # each seed: hyper - plain mean over the same episodes
    assert "s0: +5.00, s1: +5.00, s2: +5.00" in text
    assert f"| +{100 * np.mean(diffs):.2f} ± {100 * t_ci(diffs):.2f} |" in text  # zero spread: ± 0.00
    assert "t_{0.975, k-1} * std(d_s, ddof=1) / sqrt(k)" in text
    paired = json.loads((report / "results.json").read_text())["paired_across_seeds"]
    assert len(paired) == 1 and paired[0]["seeds"] == [0, 1, 2] and paired[0]["hyper"] == "hyper_conv"
    assert paired[0]["per_seed"] == pytest.approx(diffs) and paired[0]["ci95"] == pytest.approx(0.0, abs=1e-12)


def test_unequal_paired_differences_get_the_t_interval(tmp_path):
    plain = {0: [0.5, 0.5], 1: [0.5, 0.5], 2: [0.5, 0.5]}
    hyper = {0: [0.5, 0.6], 1: [0.6, 0.7], 2: [0.4, 0.5]}  # differences .05 .15 -.05
    records = [record("conv", s, plain[s]) for s in SEEDS] + [record("hyper_conv", s, hyper[s]) for s in SEEDS]
    write_report(records, tmp_path, environment=ENV, n_boot=100)
    summary = json.loads((tmp_path / "results.json").read_text())["paired_across_seeds"][0]
    assert summary["mean"] == pytest.approx(0.05)
    assert summary["ci95"] == pytest.approx(t_ci([0.05, 0.15, -0.05]))  # 4.303 * 0.1 / sqrt(3) = 0.2484
    assert summary["ci95"] == pytest.approx(0.24841, abs=1e-5)


def test_csv_keeps_one_row_per_seed_and_json_the_summaries(report):
    rows = list(csv.DictReader((report / "results.csv").open()))
    assert [(r["model"], r["seed"]) for r in rows if r["model"] == "conv"] == [("conv", "0"), ("conv", "1"),
                                                                             ("conv", "2")]
    document = json.loads((report / "results.json").read_text())
    cells = {c["model"]: c for c in document["across_seeds"]}
    assert cells["conv"]["per_seed"] == pytest.approx([0.6, 0.5, 0.65])
    assert cells["conv"]["ci95"] == pytest.approx(t_ci([0.6, 0.5, 0.65]))
    assert cells["other"]["n_seeds"] == 1 and cells["other"]["ci95"] is None


def test_one_seed_report_says_so_and_has_no_across_seed_rows(tmp_path):
    write_report([record("conv", 0, PLAIN[0]), record("hyper_conv", 0, HYPER[0])], tmp_path, environment=ENV,
                 n_boot=100)
    text = (tmp_path / "report.md").read_text()
    assert "one training seed per model" in text and "mean (" not in text and "across seeds" not in text


def test_movement_ratio_of_paired_runs_and_curves(report):
    document = json.loads((report / "results.json").read_text())
    ratios = {r["seed"]: r for r in document["movement_ratios"]}
    assert set(ratios) == set(SEEDS)
    layer = ratios[1]["layers"]["stages.0.1.conv1"]
    # generated 2*i and plain 0.5*i at iterations 1, 2: means 3.0 and 0.75
    assert (layer["hyper"], layer["plain"], layer["ratio"]) == (3.0, 0.75, 4.0)
    assert ratios[1]["hyper_run"] == "hyper_conv-s1" and ratios[1]["plain_run"] == "conv-s1"
    text = (report / "report.md").read_text()
    assert "| hyper_conv | conv | 0 | stage 1, block 2, conv 1 | 3 | 0.75 | 4 |" in text  # models, seed, paper's words
    assert "-s0" not in text
    assert (report / "movement_curves.png").read_bytes()[:4] == b"\x89PNG"


def test_baseline_pairs_are_not_movement_pairs():
    class Rec:
        def __init__(self, model, seed):
            self.model, self.seed, self.config = model, seed, {}

    class Cmp:
        def __init__(self, hyper, plain):
            self.hyper, self.plain = Rec(hyper, 0), Rec(plain, 0)

    assert movement_pairs([Cmp("hyper_a", "a"), Cmp("hyper_a+nearest_centroid", "a+nearest_centroid")]) == [
        ("hyper_a", "a", 0, "hyper_a", "a")]
