"""Tests for metahyper.eval.stats: t-based CIs, paired comparisons, bootstrap, formatting."""

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats as sps

from metahyper.eval import stats
from metahyper.eval.stats import EvalResult, format_interval, format_p, format_pm, mean_ci, paired_comparison

accuracies = st.lists(st.floats(0, 1, allow_nan=False), min_size=2, max_size=200)


def test_hand_worked_example():
    # mean 0.75; deviations -0.15, 0.05, -0.05, 0.15 -> sum of squares 0.05; var 0.05/3;
    # std 0.1290994; sem = std/2 = 0.0645497; t_{0.975,3} = 3.182446 -> half width 0.2054264
    mean, half = mean_ci([0.6, 0.8, 0.7, 0.9])
    std = math.sqrt(0.05 / 3)
    assert std == pytest.approx(0.1290994, abs=1e-7)
    assert mean == pytest.approx(0.75)
    assert half == pytest.approx(3.182446 * std / 2, rel=1e-6)
    assert half == pytest.approx(0.2054264, abs=1e-6)


@settings(max_examples=50, deadline=None)
@given(accuracies)
def test_matches_scipy_t_interval(values):
    mean, half = mean_ci(values)
    sample = np.asarray(values)
    if sample.std() == 0:
        assert half == 0
        return
    low, high = sps.t.interval(0.95, len(values) - 1, loc=sample.mean(), scale=sps.sem(sample))
    assert mean == pytest.approx((low + high) / 2, abs=1e-12)
    assert half == pytest.approx((high - low) / 2, rel=1e-9)


def test_normal_approximation_differs_by_less_than_0_3_percent_at_600():
    values = np.random.default_rng(1).uniform(0.3, 0.9, 600)
    _, half = mean_ci(values)
    normal = 1.96 * values.std(ddof=1) / math.sqrt(600)
    assert abs(half / normal - 1) < 0.003


@pytest.mark.parametrize(
    "values, message",
    [
        ([0.5], "single episode"),
        ([], "empty"),
        ([0.5, float("nan"), 0.2], "non-finite value nan at episode 1"),
        ([0.5, float("inf")], "non-finite"),
        ([[0.5, 0.6], [0.1, 0.2]], "1-D"),
    ],
)
def test_mean_ci_rejects_bad_input(values, message):
    with pytest.raises(ValueError, match=message):
        mean_ci(values)


def test_t_interval_covers_the_true_mean_about_95_percent():
    rng = np.random.default_rng(0)
    trials = [mean_ci(rng.binomial(75, 0.6, 30) / 75) for _ in range(2000)]
    coverage = np.mean([abs(mean - 0.6) <= half for mean, half in trials])
    assert 0.93 < coverage < 0.97


def test_eval_result_from_accuracies():
    result = EvalResult.from_accuracies([0.6, 0.8, 0.7, 0.9], model="m")
    assert (result.n, result.per_episode) == (4, (0.6, 0.8, 0.7, 0.9))
    assert result.mean == pytest.approx(0.75)
    assert result.ci95 == pytest.approx(mean_ci(result.per_episode)[1])
    assert result.metadata == {"model": "m"}
    assert result == EvalResult.from_accuracies([0.6, 0.8, 0.7, 0.9], model="other")
    assert str(result) == "75.00 ± 20.54"


def test_eval_result_checks_range_and_length():
    with pytest.raises(ValueError, match=r"1.5 at episode 1 is outside \[0, 1\]"):
        EvalResult.from_accuracies([0.5, 1.5])
    with pytest.raises(ValueError, match="n=3 but 2"):
        EvalResult(mean=0.5, ci95=0.1, n=3, per_episode=(0.4, 0.6))


def test_paired_comparison_matches_ttest_rel_and_hand_computed_t():
    rng = np.random.default_rng(3)
    b = rng.uniform(0.4, 0.7, 50)
    a = np.clip(b + rng.normal(0.02, 0.05, 50), 0, 1)
    result = paired_comparison(a, b, n_boot=2000, seed=1)
    d = a - b
    sem = d.std(ddof=1) / math.sqrt(50)
    reference = sps.ttest_rel(a, b)
    assert result.t_stat == pytest.approx(d.mean() / sem, rel=1e-10)
    assert result.t_stat == pytest.approx(reference.statistic, rel=1e-10)
    assert result.p_value == pytest.approx(reference.pvalue, rel=1e-10)
    assert result.p_value == pytest.approx(2 * sps.t.sf(abs(d.mean() / sem), 49), rel=1e-8)
    assert result.diff == pytest.approx(d.mean())
    assert result.ci95 == pytest.approx(sps.t.ppf(0.975, 49) * sem)
    assert (result.mean_a, result.mean_b, result.n) == (pytest.approx(a.mean()), pytest.approx(b.mean()), 50)


def test_paired_comparison_names_both_lengths():
    with pytest.raises(ValueError, match=r"a has 5 per-episode values.*b has 4"):
        paired_comparison([0.1] * 5, [0.1] * 4)


def test_identical_and_constant_shift_are_defined():
    a = [0.2, 0.4, 0.6]
    same = paired_comparison(a, a, n_boot=100)
    assert (same.diff, same.t_stat, same.p_value, same.boot_low, same.boot_high) == (0, 0, 1, 0, 0)
    shifted = paired_comparison([0.5, 0.5, 0.5], [0.25, 0.25, 0.25], n_boot=100)
    assert (shifted.t_stat, shifted.p_value) == (math.inf, 0.0)


def test_bootstrap_is_deterministic_and_seeded():
    rng = np.random.default_rng(5)
    a, b = rng.uniform(0, 1, 100), rng.uniform(0, 1, 100)
    first = paired_comparison(a, b, n_boot=500, seed=7)
    assert first == paired_comparison(a, b, n_boot=500, seed=7)
    assert (first.boot_low, first.boot_high) != (
        paired_comparison(a, b, n_boot=500, seed=8).boot_low,
        paired_comparison(a, b, n_boot=500, seed=8).boot_high,
    )


def test_bootstrap_does_not_depend_on_chunking(monkeypatch):
    sample = np.random.default_rng(2).normal(size=37)
    whole = stats.bootstrap_mean_ci(sample, 300, seed=4)
    monkeypatch.setattr(stats, "_BOOTSTRAP_CHUNK", 100)  # 2 resamples per chunk
    assert stats.bootstrap_mean_ci(sample, 300, seed=4) == whole


def test_bootstrap_matches_manual_resampling():
    sample = np.random.default_rng(9).normal(size=20)
    rng = np.random.default_rng(11)
    means = sample[rng.integers(0, 20, size=(400, 20))].mean(axis=1)
    expected = tuple(np.percentile(means, [2.5, 97.5]))
    assert stats.bootstrap_mean_ci(sample, 400, seed=11) == pytest.approx(expected)


def test_bootstrap_ci_agrees_with_t_ci_and_covers():
    rng = np.random.default_rng(4)
    b = rng.uniform(0.4, 0.7, 600)
    a = np.clip(b + rng.normal(0.01, 0.08, 600), 0, 1)
    result = paired_comparison(a, b, n_boot=4000)
    assert result.boot_low < result.diff < result.boot_high
    assert (result.boot_high - result.boot_low) / 2 == pytest.approx(result.ci95, rel=0.1)
    # coverage sanity: over repeated samples the bootstrap CI covers the true shift most times
    hits = 0
    for _ in range(200):
        base = rng.uniform(0.4, 0.7, 40)
        shifted = base + 0.03 + rng.normal(0, 0.05, 40)
        low, high = stats.bootstrap_mean_ci(shifted - base, 500, int(rng.integers(1 << 30)))
        hits += low <= 0.03 <= high
    assert 0.88 <= hits / 200 <= 0.99


def test_bootstrap_rejects_bad_n_boot():
    with pytest.raises(ValueError, match="n_boot"):
        paired_comparison([0.1, 0.2], [0.3, 0.1], n_boot=0)


def test_formatting():
    assert format_pm(0.58, 0.008) == "58.00 ± 0.80"
    assert format_pm(0.012345, 0.0045, signed=True) == "+1.23 ± 0.45"
    assert format_pm(-0.02, 0.01, signed=True) == "-2.00 ± 1.00"
    assert format_interval(-0.01, 0.02) == "[-1.00, 2.00]"
    assert format_p(0.04321) == "0.0432"
    assert format_p(3e-7) == "<0.0001"
