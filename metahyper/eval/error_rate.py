"""Error rates, the way the literature reports Lake et al.'s Omniglot one-shot runs.

Lake, Salakhutdinov & Tenenbaum (2015) and the papers after them report their 20 one-shot
runs as an error rate: 100 - the mean accuracy over the runs, in percent. A record is reported
so when its evaluation metadata says ``metric: error_rate`` (the evaluate stage sets it for
targets whose data set defines its episodes with that metric:
``metahyper.data.episodes.DataEpisodes``). The 95% CI over the n runs is the accuracy's,
t_{0.975, n-1} * std(ddof=1) / sqrt(n) (an error rate is 1 - accuracy, so its spread is the
same); with several training seeds a "mean (k seeds)" row gives 100 - the mean over the seeds'
mean accuracies with the t-CI over seeds. The accuracy table keeps these records as accuracies;
``results.json`` keeps every run's accuracy (``per_episode``) and adds ``error_rates``.
"""

from __future__ import annotations

from typing import Any, Iterable

from metahyper.eval.stats import format_pm

ERROR_RATE_NOTE = ("Error rate (%) = 100 - mean accuracy over the n episodes (for Lake's one-shot runs: the 20 "
                   "runs, as Lake et al. 2015 report them); 95% CI = t_{0.975, n-1} * std(ddof=1) / sqrt(n) over "
                   "the per-run accuracies. Rows 'mean (k seeds)': 100 - the mean of the k seeds' mean accuracies, "
                   "95% CI = t_{0.975, k-1} * std(ddof=1) / sqrt(k) over the seeds")


def reports_error_rate(record: Any) -> bool:
    """Whether ``record`` (a ``ResultRecord``) is reported as an error rate."""
    evaluation = record.config.get("evaluation") if isinstance(record.config, dict) else None
    return isinstance(evaluation, dict) and evaluation.get("metric") == "error_rate"


def error_rates(records: Iterable[Any], summaries: Iterable[Any]) -> list[dict[str, Any]]:
    """One entry per error-rate record (``seed``, ``n`` episodes) and, where a model has several
    seeds, one per model (``seeds``, ``n_seeds``); ``error_rate`` and ``ci95`` as fractions.
    ``summaries`` are ``metahyper.eval.seeds.seed_summaries`` of the records."""
    chosen = [r for r in records if reports_error_rate(r)]
    cells = {(r.model, r.source, r.bn_mode, r.target, r.way, r.shot) for r in chosen}
    entries = []
    for r in chosen:
        entries.append({"model": r.model, "source": r.source, "bn_mode": r.bn_mode, "target": r.target,
                        "way": r.way, "shot": r.shot, "seed": r.seed, "n": r.result.n,
                        "error_rate": 1 - r.result.mean, "ci95": r.result.ci95})
    for s in summaries:
        if s.key in cells and s.n_seeds > 1:
            model, source, bn_mode, target, way, shot = s.key
            entries.append({"model": model, "source": source, "bn_mode": bn_mode, "target": target, "way": way,
                            "shot": shot, "seeds": list(s.seeds), "n_seeds": s.n_seeds, "error_rate": 1 - s.mean,
                            "ci95": s.ci95})
    return entries


def error_rate_table(entries: list[dict[str, Any]]) -> tuple[list[str], list[list[str]]]:
    """Header and rows of the report's error-rate table from ``error_rates``: one row per model
    and seed, then the model's 'mean (k seeds)' row."""
    order = list(dict.fromkeys((e["model"], e["source"], e["bn_mode"]) for e in entries))
    rows = []
    for e in sorted(entries, key=lambda e: (order.index((e["model"], e["source"], e["bn_mode"])), "seeds" in e)):
        seed, n = (f"mean ({e['n_seeds']} seeds)", f"{e['n_seeds']} seeds") if "seeds" in e else (str(e["seed"]),
                                                                                                 f"{e['n']} runs")
        rows.append([e["model"], e["source"], e["bn_mode"], seed, e["target"], f"{e['way']}-way {e['shot']}-shot", n,
                     format_pm(e["error_rate"], e["ci95"])])
    return ["model", "source", "BN", "seed", "target", "setting", "n", "error rate (%)"], rows
