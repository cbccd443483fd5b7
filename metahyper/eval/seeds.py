"""Across-seed summaries: a cell's mean over training seeds and the paired hyper - plain
difference over seeds, each with a t-based 95% CI over the seeds.

A suite run with several seeds (``metahyper.suite.expansion.expand_runs``) gives one record per seed
for every cell (model x source x BN mode x target x way x shot), all on the same fixed episode
set. The per-episode CI of a cell says how well the episodes pin that one trained model down;
the spread over seeds says how much training noise there is. ``seed_summaries`` takes each
seed's mean accuracy m_s and reports mean_s m_s ± t_{0.975, k-1} * std(m_s, ddof=1) / sqrt(k)
over the k seeds (``SEED_CI_FORMULA``); ``paired_seed_summaries`` does the same with each seed's
paired difference d_s = mean over episodes of (hyper - plain) on the same episodes
(``PAIRED_SEED_CI_FORMULA``). With one seed there is no across-seed CI (``ci95`` is None).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Iterable

from metahyper.eval.stats import format_pm, mean_ci

SEED_CI_FORMULA = ("across seeds: mean over the k seeds of each seed's mean accuracy m_s, 95% CI = "
                   "t_{0.975, k-1} * std(m_s, ddof=1) / sqrt(k)")
PAIRED_SEED_CI_FORMULA = ("d_s = seed s's mean per-episode difference hyper - plain on the same episodes; "
                          "mean over the k seeds of d_s, 95% CI = t_{0.975, k-1} * std(d_s, ddof=1) / sqrt(k)")


@dataclass(frozen=True)
class SeedSummary:
    """One value per seed (``per_seed``, fractions, in ``seeds`` order), their mean, and the
    half width of the 95% t-interval over seeds (None for a single seed)."""

    key: tuple
    seeds: tuple[int, ...]
    per_seed: tuple[float, ...]
    mean: float
    ci95: float | None

    @property
    def n_seeds(self) -> int:
        return len(self.seeds)

    def cell(self, signed: bool = False) -> str:
        """``"58.00 ± 0.80"`` in percent, or ``"58.00 (1 seed)"`` without an across-seed CI."""
        if self.ci95 is None:
            return f"{100 * self.mean:{'+' if signed else ''}.2f} (1 seed)"
        return format_pm(self.mean, self.ci95, signed=signed)


def summarise(items: Iterable[Any], key: Callable[[Any], tuple], seed: Callable[[Any], int],
              value: Callable[[Any], float]) -> list[SeedSummary]:
    """Group ``items`` by ``key`` (first-appearance order), seeds sorted within a group."""
    groups: dict[tuple, dict[int, float]] = {}
    for item in items:
        per_seed = groups.setdefault(key(item), {})
        if seed(item) in per_seed:
            raise ValueError(f"two results for {key(item)} at seed {seed(item)}")
        per_seed[seed(item)] = value(item)
    summaries = []
    for group, per_seed in groups.items():
        seeds = tuple(sorted(per_seed))
        values = tuple(per_seed[s] for s in seeds)
        mean, ci95 = mean_ci(values) if len(values) > 1 else (values[0], None)
        summaries.append(SeedSummary(group, seeds, values, mean, ci95))
    return summaries


def record_key(record: Any) -> tuple:
    """The accuracy-table cell of a result record, seeds aside."""
    return (record.model, record.source, record.bn_mode, record.target, record.way, record.shot)


def seed_summaries(records: Iterable[Any]) -> list[SeedSummary]:
    """Across-seed mean accuracy and CI per cell of ``ResultRecord`` s."""
    return summarise(records, record_key, lambda r: r.seed, lambda r: r.result.mean)


def paired_seed_summaries(comparisons: Iterable[Any]) -> list[SeedSummary]:
    """Across-seed mean paired difference and CI per (hyper, plain, cell, episode set) of the
    report's per-seed comparisons (``hyper``/``plain`` records and ``stats.diff``)."""
    return summarise(comparisons, lambda c: (c.hyper.model, c.plain.model, *record_key(c.hyper)[1:],
                                             c.hyper.episodes_hash),
                     lambda c: c.hyper.seed, lambda c: c.stats.diff)


def summary_json(summary: SeedSummary, names: tuple[str, ...]) -> dict[str, Any]:
    """A summary as a results.json entry: its key fields by ``names``, then the numbers."""
    return {**dict(zip(names, summary.key)), "seeds": list(summary.seeds), "per_seed": list(summary.per_seed),
            "n_seeds": summary.n_seeds, "mean": summary.mean, "ci95": summary.ci95}


RECORD_FIELDS = ("model", "source", "bn_mode", "target", "way", "shot")
PAIR_FIELDS = ("hyper", "plain", "source", "bn_mode", "target", "way", "shot", "episodes_hash")


def paired_seed_table(summaries: list[SeedSummary]) -> list[list[str]]:
    """Rows of the paired across-seed table: cell, the per-seed differences, their mean ± CI."""
    rows = []
    for s in summaries:
        hyper, plain, source, bn_mode, target, way, shot, _ = s.key
        per_seed = ", ".join(f"s{seed}: {100 * d:+.2f}" for seed, d in zip(s.seeds, s.per_seed))
        rows.append([source, target, f"{way}-way {shot}-shot", bn_mode, hyper, plain, str(s.n_seeds), per_seed,
                     s.cell(signed=True)])
    return rows


PAIRED_SEED_HEADER = ["source", "target", "setting", "BN", "hyper", "plain", "seeds", "per-seed diff (pp)",
                      "mean diff (pp, 95% CI over seeds)"]
