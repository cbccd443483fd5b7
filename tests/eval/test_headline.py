"""The report's headline in the paper's layout, its caveats and notes, the settings summary, and
the figures' numbers (relative movement, "not adapted" layers, CI bands), from hand-made records
whose expected values are worked out by hand in the comments."""

import json

import numpy as np
import pytest
from scipy import stats as sps

from metahyper.config import ConfigError, to_dict
from metahyper.eval import headline
from metahyper.eval.movement import run_movement
from metahyper.eval.plots import ValSetting, _band, _val_curves
from metahyper.eval.records import as_record
from metahyper.eval.report import write_report
from metahyper.eval.seeds import seed_summaries
from metahyper.eval.settings import meta_training, pretraining, settings_section
from metahyper.suite.config import load_suite
from metahyper.suite.paper import PaperResult

ENV = {"python": "3.x", "device": "cpu"}
PNG = b"\x89PNG\r\n\x1a\n"


def record(model, seed, shot, accuracies, episodes="h", way=5, config=None):
    return dict(model=model, source="src", target="tgt", way=way, shot=shot, bn_mode="transductive",
                per_episode=list(accuracies), episodes_hash=f"{episodes}{shot}", seed=seed,
                config=config or {"evaluation": {"predictor": "maml"}})


# Model "hyper_a" at seeds 0, 1, 2: seed means 0.6, 0.5, 0.7 at 1-shot and 0.8 each at 5-shot.
HYPER = {0: ([0.5, 0.7], [0.8, 0.8]), 1: ([0.4, 0.6], [0.7, 0.9]), 2: ([0.7, 0.7], [0.8, 0.8])}
# Model "a" at seeds 0, 1, 2: seed means 0.5, 0.5, 0.5 at 1-shot and 0.6, 0.7, 0.8 at 5-shot.
PLAIN = {0: ([0.4, 0.6], [0.6, 0.6]), 1: ([0.5, 0.5], [0.7, 0.7]), 2: ([0.5, 0.5], [0.7, 0.9])}
# "b", one seed, 4 episodes at 1-shot only: mean 0.6, sd sqrt(0.08 / 3) = 0.163299,
# t_{0.975, 3} = 3.182446: half width 3.182446 * 0.163299 / 2 = 0.259846.
SINGLE = [0.4, 0.6, 0.6, 0.8]


def three_seed_records():
    found = []
    for model, table in (("hyper_a", HYPER), ("a", PLAIN)):
        for seed, (one, five) in table.items():
            found += [record(model, seed, 1, one), record(model, seed, 5, five)]
    return found


def test_headline_cells_are_means_and_t_cis_over_seeds_and_chance_per_column(tmp_path):
    paper = [PaperResult("hyper_a", 5, 1, "Paper T7", accuracy=62.5, note="ResNet-12 at 84x84, 3 runs"),
             PaperResult("people", 5, 1, "Lake 2015", error=4.5, note="within one alphabet"),
             PaperResult("a", 20, 1, "Paper T7", accuracy=30.0),
             PaperResult("BPL", 20, 1, "Lake 2015", error=4.3, target="lake-runs")]
    write_report(three_seed_records() + [record("b", 0, 1, SINGLE)], tmp_path, environment=ENV, n_boot=50,
                 paper=paper)
    text = (tmp_path / "report.md").read_text()
    headline = text.split("## Headline: accuracy (%)")[1].split("## Settings")[0]
    # hyper_a 1-shot: mean 0.6, sd 0.1 over 3 seeds, t_{0.975, 2} = 4.302653: 4.302653 * 0.1 / sqrt(3) = 0.248414
    # a 5-shot: mean 0.7, sd 0.1: the same half width; a 1-shot and hyper_a 5-shot: no spread
    assert "| model | method | seeds | tgt 5-way 1-shot | tgt 5-way 5-shot |" in headline
    assert "| chance (100/way) |  |  | 20.00 | 20.00 |" in headline
    # the paper's number in a row right under ours, in the same column
    assert ("| hyper_a | maml | 3 | 60.00 ± 24.84 | 80.00 ± 0.00 |\n"
            "| hyper_a (Paper T7) | paper |  | 62.5 | – |\n"
            "| a | maml | 3 | 50.00 ± 0.00 | 70.00 ± 24.84 |") in headline
    assert "| b | maml | 1 | 60.00 ± 25.98 | – |" in headline  # one seed: the per-episode CI
    assert "| people (Lake 2015) | paper |  | 95.5 (error 4.5) | – |" in headline
    assert "Source domain: src · BN mode: transductive" in headline
    # the protocol differences directly under the table; the numbers that fit no column as a table
    table_end = headline.index("| people (Lake 2015) | paper |  | 95.5 (error 4.5) | – |\n\n")
    assert headline[table_end:].split("\n\n")[1] == ("Protocol differences between the published numbers and ours:\n"
                                                     "- hyper_a (Paper T7): ResNet-12 at 84x84, 3 runs\n"
                                                     "- people (Lake 2015): within one alphabet")
    assert ("| model | setting | published (%) | source | note |\n|---|---|---|---|---|\n"
            "| a | 20-way 1-shot | 30 | Paper T7 | – |\n"
            "| BPL | 20-way 1-shot on lake-runs | 95.7 (error 4.3) | Lake 2015 | – |") in headline
    assert json.loads((tmp_path / "results.json").read_text())["paper"][1]["error"] == 4.5


def test_one_seed_per_model_gives_one_table_and_a_constant_seed_is_a_line(tmp_path):
    write_report([record("a", 3, 1, SINGLE), record("hyper_a", 3, 1, [0.5, 0.5, 0.7, 0.7])], tmp_path, environment=ENV,
                 n_boot=50)
    text = (tmp_path / "report.md").read_text()
    headline = text.split("## Headline: accuracy (%)")[1].split("## Settings")[0]
    assert "Source domain: src · BN mode: transductive · training seed: 3 (every model)" in headline
    # with one seed per model the per-run table would repeat the headline: only the headline is shown,
    # with the CI formula and BN mode under it
    assert text.count("| model | method | tgt 5-way 1-shot |") == 1 and "## Accuracy (%) of every run" not in text
    assert text.count("| a | maml | 60.00 ± 25.98 |") == 1
    assert "t_{0.975, n-1} * std(ddof=1) / sqrt(n)" in headline and "BN mode: transductive (each episode" in headline


def test_pipeline_caveat_for_one_seed_and_not_for_three(tmp_path):
    write_report([record("a", 0, 1, SINGLE), record("hyper_a", 0, 1, [0.5, 0.5, 0.7, 0.7])], tmp_path / "one",
                 environment=ENV, n_boot=50)
    one = (tmp_path / "one" / "report.md").read_text()
    assert one.split("\n\n")[1].startswith("> **Pipeline check, not a result.** Every model here was trained with "
                                           "one seed")
    write_report(three_seed_records(), tmp_path / "three", environment=ENV, n_boot=50)
    assert "Pipeline check" not in (tmp_path / "three" / "report.md").read_text()


def test_note_counts_the_paired_tests_and_those_below_five_percent(tmp_path):
    records = three_seed_records()
    write_report(records, tmp_path, environment=ENV, n_boot=50)
    text = (tmp_path / "report.md").read_text()
    by_key = {(r["model"], r["seed"], r["shot"]): r["per_episode"] for r in records}
    p_values = [sps.ttest_rel(by_key["hyper_a", s, k], by_key["a", s, k]).pvalue for s in range(3) for k in (1, 5)]
    significant = sum(p < 0.05 for p in np.nan_to_num(p_values, nan=1.0))
    assert (f"this report makes 6 paired t-tests (one per pair, target, setting and seed) and {significant} of "
            "them give p < 0.05") in text
    assert "about 5% of the tests (0.3 here)" in text and "p < 0.0083" in text  # 0.05 / 6


def test_settings_summary_from_a_suite_records_config(tmp_path):
    suite = load_suite("smoke")
    config = {"run": {k: v for k, v in to_dict(suite.only("hyper_wrn10_1")).items() if k != "logging"},
              "evaluation": {"predictor": "maml"}}
    spec = config["run"]["runs"]["hyper_wrn10_1"]
    # smoke.yaml: pretraining 6 epochs of adam 0.001, batch 64, decay 5e-4, penalty 6.25e-5;
    # meta-training 100 iterations of 2 tasks, 5-way 1-shot with 5 queries, inner 2 steps of 0.1, first order
    assert pretraining(spec) == "6 epochs, adam lr 0.001, batch 64, weight decay 0.0005, output-norm penalty 6.25e-05"
    assert meta_training(spec) == ("100 it x 2 tasks (5-way 1-shot, 5 queries), Adam 0.001 halved every 1000 it to "
                                   "0.0001; inner 2 steps x lr 0.1 on default roles, first order")
    lines = settings_section([type("R", (), {"model": "hyper_wrn10_1", "config": config, "shot": 1})()])
    assert lines[0] == ("Evaluation: 80 fixed episodes per target and shot (shots 1, 5; 10 queries per class; episode "
                        "seed 0), at each run's way; 5 inner steps at test time (maml, anil); BN mode transductive; "
                        "baselines on the pretrained features: nearest_centroid, logistic_regression; validation: "
                        "10 episodes of the source's val split.")
    assert "| hyper_wrn10_1 | maml | hyper_wrn(depth=10, width=1, variant=1) | 6 epochs," in lines[1]


def test_relative_movement_marks_not_adapted_and_zero_layers():
    # two diagnostic steps: conv moves 0.2 then 0.4 with ||W|| 2 then 4 (0.1 each time); bn is
    # adapted but does not move; stem has a norm and no movement: not adapted
    records = [{"kind": "train", "iteration": i, "movement": {"param/conv.weight": 0.2 * i, "param/bn.weight": 0.0,
                                                              "param/conv.bias": 9.0},
                "weight_norm": {"param/stem.weight": 1.0, "param/conv.weight": 2.0 * i, "param/bn.weight": 1.0}}
               for i in (1, 2)]
    moved = run_movement(records, relative=True)
    assert moved.moved == pytest.approx({"conv": 0.1, "bn": 0.0}) and moved.fixed == ["stem"]
    assert moved.layers == ["stem", "conv", "bn"]
    absolute = run_movement(records, relative=False)  # runs that logged no ||W||
    assert absolute.moved == pytest.approx({"conv": 0.3, "bn": 0.0}) and absolute.fixed == []


def test_validation_band_is_the_t_ci_over_seeds_or_the_logged_episode_ci():
    runs = {f"a-s{s}": [{"kind": "val", "iteration": i, "accuracy": 0.5 + 0.1 * s, "ci95": 0.05} for i in (10, 20)]
            for s in range(3)}
    runs["b"] = [{"kind": "val", "iteration": 10, "accuracy": 0.4, "ci95": 0.05}]
    settings = {f"a-s{s}": ValSetting("a", "val", 5, 1, 15, 100) for s in range(3)}
    grouped = _val_curves(runs, settings)
    iterations, mean, ci, over = _band(grouped["a"][1])
    # seed values 0.5, 0.6, 0.7: mean 60 %, half width 4.302653 * 10 / sqrt(3) = 24.84 points
    assert iterations == [10, 20] and mean == pytest.approx([60, 60]) and over == "3 seeds"
    assert ci == pytest.approx([24.8414, 24.8414], abs=1e-4)
    assert _band(grouped["b"][1])[2] == pytest.approx([5.0]) and grouped["a"][0].describe() == (
        "val split, 5-way 1-shot, 15 queries per class, 100 episodes")


def test_figures_are_written(tmp_path):
    metrics = {f"{m}-s{s}": [{"kind": "val", "iteration": i, "accuracy": 0.4 + i / 100 + s / 50, "ci95": 0.05}
                             for i in (10, 20, 30)] for m in ("a", "hyper_a") for s in range(3)}
    for s in range(3):
        for i in (10, 20, 30):
            metrics[f"a-s{s}"].append({"kind": "train", "iteration": i, "movement": {"param/conv.weight": 0.1},
                                       "weight_norm": {"param/conv.weight": 2.0, "param/stem.weight": 1.0}})
            metrics[f"hyper_a-s{s}"].append({"kind": "train", "iteration": i, "movement": {"generated/conv": 0.3},
                                             "weight_norm": {"generated/conv": 1.5, "param/stem.weight": 1.0}})
    write_report(three_seed_records(), tmp_path, metrics=metrics, environment=ENV, n_boot=50)
    for name in ("accuracy_vs_shots.png", "val_curves.png", "movement.png"):
        assert (tmp_path / name).read_bytes().startswith(PNG)


def test_paper_entries_are_checked():
    with pytest.raises(ConfigError, match=r"paper\[0\]: people: give exactly one of accuracy and error"):
        load_suite("smoke", ["paper=[{model: people, way: 5, shot: 1, source: x, accuracy: 90, error: 10}]"])
    with pytest.raises(ConfigError, match=r"paper\[0\].target: no target 'synthetic'; did you mean 'synthetic-target'"):
        load_suite("smoke", ["paper=[{model: a, way: 5, shot: 1, source: x, accuracy: 90, target: synthetic}]"])
    lake = load_suite("omniglot-lake").paper
    assert [(p.model, p.way, p.shot, p.error) for p in lake] == [
        ("people", 20, 1, 4.5), ("Bayesian Program Learning", 20, 1, 3.3), ("Siamese convnet", 20, 1, 8.0)]


@pytest.mark.parametrize("shots, joined", [((1, 5), False), ((1, 5, 10), True)])
def test_accuracy_vs_shots_joins_points_only_from_three_shots(monkeypatch, tmp_path, shots, joined):
    drawn = []
    monkeypatch.setattr(headline, "save_figure", lambda fig, path: drawn.append(fig))
    found = [as_record(record(model, 0, shot, SINGLE)) for model in ("a", "hyper_a") for shot in shots]
    headline.plot_accuracy_vs_shots(found, seed_summaries(found), tmp_path / "f.png")
    (ax,) = drawn[0].axes
    data = [line for line in ax.lines if line.get_marker() == "o"]  # one series per model, CIs as error bars
    assert len(data) == 2 and {line.get_linestyle() for line in data} == ({"-"} if joined else {"None"})
    assert [t.get_text() for t in ax.get_xticklabels()] == [f"{s}-shot" for s in shots]  # shots as categories
    headline.plt.close(drawn[0])
