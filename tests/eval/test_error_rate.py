"""The report's error rates for targets reported so (Lake's one-shot runs): 100 - the mean
accuracy over the 20 runs with the t-CI over the runs, per seed and over seeds, against numbers
computed here with scipy; other targets stay out of it; extra notes head the report's notes."""

import json

import numpy as np
import pytest
from scipy import stats as sps

from metahyper.eval.report import write_report

ENV = {"python": "3.x", "device": "cpu"}
CELL = "lake | 20-way 1-shot"  # the target and setting columns
# per-run correct answers (of 20) of a model at seeds 0, 1, 2 on Lake's 20 runs
CORRECT = {0: [20, 19, 18, 20, 17, 20, 20, 19, 16, 20, 20, 18, 20, 19, 20, 15, 20, 20, 19, 20],
           1: [19] * 10 + [20] * 10,
           2: [20, 20, 17, 18, 19, 20, 20, 20, 20, 14, 20, 19, 20, 20, 18, 20, 20, 20, 16, 20]}


def record(model, seed, accuracies, target="lake", metric="error_rate"):
    evaluation = {"predictor": "protonet", **({"metric": metric} if metric else {})}
    return dict(model=model, source="omniglot", target=target, way=20, shot=1, bn_mode="transductive",
                per_episode=list(accuracies), episodes_hash="h", seed=seed, config={"evaluation": evaluation})


def by_hand(values):
    """(100 - mean, t-CI half width) in percent, by scipy.stats.t.interval."""
    values = np.asarray(values, dtype=float)
    low, high = sps.t.interval(0.95, len(values) - 1, loc=values.mean(), scale=sps.sem(values))
    return 100 * (1 - values.mean()), 100 * (high - low) / 2


@pytest.fixture
def report(tmp_path):
    per_run = {s: [c / 20 for c in CORRECT[s]] for s in CORRECT}
    records = [record("proto", s, per_run[s]) for s in CORRECT]
    records.append(record("proto", 0, [0.5, 0.6, 0.7], target="mnist", metric=None))  # an accuracy target
    write_report(records, tmp_path, environment=ENV, n_boot=100, notes=["target later was skipped: no data"])
    return tmp_path, per_run


def test_error_rate_rows_per_seed_and_over_seeds(report):
    out, per_run = report
    text = (out / "report.md").read_text()
    section = text[text.index("## Error rate (%)"):text.index("## Paired comparisons")]
    for seed, accuracies in per_run.items():
        error, half = by_hand(accuracies)
        assert f"| proto | omniglot | transductive | {seed} | {CELL} | 20 runs | {error:.2f} ± {half:.2f} |" in section
    error, half = by_hand([np.mean(a) for a in per_run.values()])
    assert f"| proto | omniglot | transductive | mean (3 seeds) | {CELL} | 3 seeds | {error:.2f} ± {half:.2f} |" \
        in section
    assert "mnist" not in section and "100 - mean accuracy over the n episodes" in section
    assert text.index("- target later was skipped: no data") < text.index("## Environment")


def test_results_json_keeps_per_run_accuracies_and_adds_error_rates(report):
    out, per_run = report
    document = json.loads((out / "results.json").read_text())
    lake = [r for r in document["results"] if r["target"] == "lake"]
    assert [r["per_episode"] for r in lake] == [per_run[s] for s in (0, 1, 2)]
    entries = document["error_rates"]
    assert [e.get("seed", "mean") for e in entries] == [0, 1, 2, "mean"]
    error, half = by_hand(per_run[1])
    assert entries[1]["error_rate"] == pytest.approx(error / 100) and entries[1]["ci95"] == pytest.approx(half / 100)
    assert entries[3]["n_seeds"] == 3 and document["notes"][0] == "target later was skipped: no data"
