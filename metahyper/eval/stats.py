"""Few-shot evaluation statistics: mean with a t-based 95% CI, and paired model comparisons.

docs/architecture.md section 9. Accuracies are per episode, as fractions in [0, 1]. The 95% confidence
interval of a mean over ``n`` episodes is ``mean ± t_{0.975, n-1} * std(ddof=1) / sqrt(n)``
(``CI_FORMULA``); CloserLook and Meta-Dataset use ``1.96 * std / sqrt(n)``, which differs by less
than 0.3% at n = 600. With ``n == 1`` the sample standard deviation is undefined, so ``mean_ci``
raises a ``ValueError`` by design instead of returning NaN or a zero-width interval that would
read as certainty.

Two models evaluated on the *same* episodes are compared per episode (``paired_comparison``):
the mean of the differences, its t-based CI, the p-value of the paired t-test
(``scipy.stats.ttest_rel``) and a percentile bootstrap CI that resamples episodes.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Mapping, Sequence

import numpy as np
from scipy import stats as sps

CI_FORMULA = "95% CI = t_{0.975, n-1} * std(ddof=1) / sqrt(n) over per-episode accuracies"
_BOOTSTRAP_CHUNK = 1 << 20  # resampled indices held in memory at once


def _as_sample(values: Sequence[float] | np.ndarray, name: str) -> np.ndarray:
    """Validate a 1-D sample of at least 2 finite numbers and return it as float64."""
    array = np.asarray(values, dtype=np.float64)
    if array.ndim != 1:
        raise ValueError(f"{name} must be 1-D (one value per episode), got shape {array.shape}")
    if array.size == 0:
        raise ValueError(f"{name} is empty: a mean and CI need at least 2 episodes")
    if array.size == 1:
        raise ValueError(
            f"{name} has a single episode: the 95% CI uses std(ddof=1), which is undefined "
            "for n = 1; evaluate at least 2 episodes"
        )
    bad = np.flatnonzero(~np.isfinite(array))
    if bad.size:
        raise ValueError(f"{name} has a non-finite value {array[bad[0]]} at episode {bad[0]}")
    return array


def _t_half_width(sample: np.ndarray) -> float:
    """Half width of the 95% t-interval of the sample mean."""
    n = sample.size
    return float(sps.t.ppf(0.975, n - 1) * sample.std(ddof=1) / math.sqrt(n))


def mean_ci(per_episode: Sequence[float] | np.ndarray) -> tuple[float, float]:
    """Return ``(mean, half_width)`` of the 95% t-interval; raises ``ValueError`` for n < 2."""
    sample = _as_sample(per_episode, "per_episode")
    return float(sample.mean()), _t_half_width(sample)


@dataclass(frozen=True)
class EvalResult:
    """Accuracy of one model on one episode set: mean and 95% CI half width (fractions).

    ``metadata`` carries free-form context (model, target domain, episode-set hash, ...); it is
    excluded from equality and hashing. Build one with ``EvalResult.from_accuracies``.
    """

    mean: float
    ci95: float
    n: int
    per_episode: tuple[float, ...]
    metadata: Mapping[str, Any] = field(default_factory=dict, compare=False, hash=False)

    def __post_init__(self) -> None:
        if self.n != len(self.per_episode):
            raise ValueError(f"EvalResult n={self.n} but {len(self.per_episode)} per-episode values")

    @classmethod
    def from_accuracies(cls, per_episode: Sequence[float] | np.ndarray, **metadata: Any) -> "EvalResult":
        """Compute mean and CI from per-episode accuracies, which must lie in [0, 1]."""
        sample = _as_sample(per_episode, "per_episode")
        outside = np.flatnonzero((sample < 0) | (sample > 1))
        if outside.size:
            i = outside[0]
            raise ValueError(f"per-episode accuracy {sample[i]} at episode {i} is outside [0, 1]")
        return cls(
            mean=float(sample.mean()),
            ci95=_t_half_width(sample),
            n=int(sample.size),
            per_episode=tuple(sample.tolist()),
            metadata=dict(metadata),
        )

    def __str__(self) -> str:
        return format_pm(self.mean, self.ci95)


@dataclass(frozen=True)
class PairedResult:
    """Model a minus model b on the same ``n`` episodes (fractions, not percent).

    ``diff`` is the mean per-episode difference and ``ci95`` the half width of its t-interval;
    ``t_stat``/``p_value`` come from the two-sided paired t-test; ``boot_low``/``boot_high`` are
    the 2.5th and 97.5th percentiles of ``n_boot`` bootstrap means of the differences.
    """

    n: int
    mean_a: float
    mean_b: float
    diff: float
    ci95: float
    t_stat: float
    p_value: float
    boot_low: float
    boot_high: float
    n_boot: int
    seed: int


def _paired_t_test(a: np.ndarray, b: np.ndarray, diff: np.ndarray) -> tuple[float, float]:
    """``scipy.stats.ttest_rel(a, b)``, defined also when every difference is the same.

    With zero variance of the differences the t statistic is 0/0 or x/0; scipy returns NaN for
    the former. Here identical differences give t = 0, p = 1 when they are all zero and
    t = ±inf, p = 0 otherwise, so a model compared with itself reads "no difference".
    """
    if np.all(diff == diff[0]):
        return (0.0, 1.0) if diff[0] == 0 else (math.copysign(math.inf, diff[0]), 0.0)
    result = sps.ttest_rel(a, b)
    return float(result.statistic), float(result.pvalue)


def bootstrap_mean_ci(sample: np.ndarray, n_boot: int, seed: int) -> tuple[float, float]:
    """Percentile 95% bootstrap CI of the mean, resampling indices with ``default_rng(seed)``.

    Resampling runs in chunks so memory stays bounded for large ``n * n_boot``; the result
    depends only on (sample, n_boot, seed).
    """
    if not isinstance(n_boot, int) or n_boot < 1:
        raise ValueError(f"n_boot must be a positive int, got {n_boot!r}")
    rng = np.random.default_rng(seed)
    n = sample.size
    rows = max(1, _BOOTSTRAP_CHUNK // n)
    means = np.empty(n_boot)
    for start in range(0, n_boot, rows):
        stop = min(start + rows, n_boot)
        indices = rng.integers(0, n, size=(stop - start, n))
        means[start:stop] = sample[indices].mean(axis=1)
    low, high = np.percentile(means, [2.5, 97.5])
    return float(low), float(high)


def paired_comparison(
    a: Sequence[float] | np.ndarray,
    b: Sequence[float] | np.ndarray,
    n_boot: int = 10000,
    seed: int = 0,
) -> PairedResult:
    """Compare two models' per-episode accuracies on the same episodes (a - b).

    Raises ``ValueError`` if the lengths differ (the episodes cannot be the same), if either has
    fewer than 2 episodes, or on non-finite values.
    """
    first, second = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    if first.shape != second.shape:
        raise ValueError(
            f"paired comparison needs the same episodes: a has {first.size} per-episode values "
            f"(shape {first.shape}), b has {second.size} (shape {second.shape})"
        )
    first, second = _as_sample(first, "a"), _as_sample(second, "b")
    diff = first - second
    boot_low, boot_high = bootstrap_mean_ci(diff, n_boot, seed)  # checks n_boot first
    t_stat, p_value = _paired_t_test(first, second, diff)
    return PairedResult(
        n=int(diff.size),
        mean_a=float(first.mean()),
        mean_b=float(second.mean()),
        diff=float(diff.mean()),
        ci95=_t_half_width(diff),
        t_stat=t_stat,
        p_value=p_value,
        boot_low=boot_low,
        boot_high=boot_high,
        n_boot=n_boot,
        seed=seed,
    )


def format_pm(mean: float, half_width: float, signed: bool = False) -> str:
    """Fractions -> percent with 2 decimals: ``format_pm(0.58, 0.008) == "58.00 ± 0.80"``.

    ``signed=True`` prefixes ``+`` on non-negative means, for differences.
    """
    sign = "+" if signed else ""
    return f"{100 * mean:{sign}.2f} ± {100 * half_width:.2f}"


def format_interval(low: float, high: float) -> str:
    """Fractions -> percent interval: ``format_interval(-0.01, 0.02) == "[-1.00, 2.00]"``."""
    return f"[{100 * low:.2f}, {100 * high:.2f}]"


def format_p(p_value: float) -> str:
    """Four decimals, or ``"<0.0001"`` below that."""
    return "<0.0001" if p_value < 1e-4 else f"{p_value:.4f}"
