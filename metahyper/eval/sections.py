"""The sections of ``report.md`` below the headline: the accuracy table of every run, the
paired comparisons (per seed and across seeds), the movement ratios, the error rates, and the
caveats and notes that go with them. ``metahyper.eval.report`` puts them together."""

from __future__ import annotations

from typing import Any, Sequence

from metahyper.eval.error_rate import ERROR_RATE_NOTE, error_rate_table, error_rates
from metahyper.eval.headline import column_name, columns, constant_fields, seed_sets
from metahyper.eval.markdown import md_table
from metahyper.eval.movement import RATIO_NOTE, ratio_table
from metahyper.eval.records import BN_MODE_MEANING, ResultRecord
from metahyper.eval.seeds import PAIRED_SEED_CI_FORMULA, PAIRED_SEED_HEADER, SEED_CI_FORMULA, SeedSummary, \
    paired_seed_table
from metahyper.eval.stats import CI_FORMULA, format_interval, format_p, format_pm

SIGNIFICANCE = 0.05


def cell_key(record: ResultRecord) -> tuple:
    """(row, column) identity of a record in the accuracy table, flattened."""
    return (record.model, record.source, record.bn_mode, record.seed,
            record.target, record.way, record.shot)



def _setting(record: ResultRecord) -> str:
    return f"{record.way}-way {record.shot}-shot"


def accuracy_table(records: list[ResultRecord], summaries: list[SeedSummary] = ()) -> str:
    """Markdown table: one row per (model, source, BN mode, seed) with the model's method, one
    column per target setting; source, BN mode and seed get a column only when they vary
    (``constant_fields``; ``fixed_line`` states the others). When some model has several seeds
    (``summaries`` from ``seed_summaries``), every model's per-seed rows are followed by a
    "mean (k seeds)" row: mean ± 95% CI over its seeds."""
    cols = columns(records)
    cells = {(cell_key(r)[:4], (r.target, r.way, r.shot)): str(r.result) for r in records}
    across = {s.key: s for s in summaries} if any(s.n_seeds > 1 for s in summaries) else {}
    fixed = constant_fields(records)
    varying = [name for name in ("source", "BN", "seed") if name not in fixed]
    header = ["model", "method", *varying, *map(column_name, cols)]
    methods = {r.model: method_name(r) for r in records}
    body = []
    for group, seeds in seed_sets(records).items():
        named = [group[0], methods[group[0]], *[v for name, v in zip(("source", "BN"), group[1:]) if name in varying]]
        body += [[*named, *([str(seed)] if "seed" in varying else [])] +
                 [cells.get(((*group, seed), column), "–") for column in cols] for seed in seeds]
        if across:
            label = f"mean ({len(seeds)} seed{'s' if len(seeds) > 1 else ''})"
            body.append([*named, label] + [across[(*group, *c)].cell() if (*group, *c) in across else "–"
                                           for c in cols])
    return md_table(header, body)


def fixed_line(records: list[ResultRecord]) -> str:
    """The fields the accuracy table leaves out because every record has the same value."""
    fixed = constant_fields(records)
    names = {"source": "Source domain", "BN": "BN mode", "seed": "training seed"}
    return " · ".join(f"{names[name]}: {value}" for name, value in fixed.items()) + " (every row)." if fixed else ""


def pipeline_caveat(records: list[ResultRecord]) -> list[str]:
    """A warning at the top of the report when some meta-trained model has one training seed."""
    seeds = {row[0]: s for row, s in seed_sets(records).items() if "+" not in row[0]}
    single = [model for model, s in seeds.items() if len(s) == 1]
    if not single:
        return []
    verb = "was" if len(single) == 1 else "were"
    who = "Every model here was" if len(single) == len(seeds) else f"{', '.join(single)} {verb}"
    return [f"> **Pipeline check, not a result.** {who} trained with one seed: its CIs cover the evaluation "
            "episodes, not the spread between training runs, which can be as large as the differences between "
            "models. Read the numbers as a check that the pipeline runs end to end; for a result, run the suite "
            "with several seeds (`seeds=[0,1,2]`) and read the across-seed CIs."]


def comparisons_note(comparisons: Sequence[Any]) -> str:
    """How many paired tests the report makes and how many would pass at 5% by chance alone."""
    n = len(comparisons)
    passed = sum(c.stats.p_value < SIGNIFICANCE for c in comparisons)
    verb = "gives" if passed == 1 else "give"
    return (f"Multiple comparisons: this report makes {n} paired t-test{'s' if n != 1 else ''} (one per pair, "
            f"target, setting and seed) and {passed} of them {verb} p < {SIGNIFICANCE:g}. If no model differed from "
            f"its pair, about {SIGNIFICANCE:.0%} of the tests ({n * SIGNIFICANCE:.1f} here) would still pass at that "
            f"level by chance; no correction is applied (Bonferroni's threshold for {n} tests: p < "
            f"{SIGNIFICANCE / n:.2g}). Tests on the same episodes or seeds are not independent.")


def method_name(record: ResultRecord) -> str:
    """The method behind ``record``: the predictor ``evaluate`` named in its metadata (maml, anil,
    protonet, a baseline), which a suite's records keep in ``config["evaluation"]``; "–" if none."""
    evaluation = record.config.get("evaluation")
    return str(evaluation.get("predictor", "–")) if isinstance(evaluation, dict) else "–"


def paired_table(comparisons: Sequence[Any]) -> str:
    """Markdown table of hyper - plain differences in percentage points."""
    header = ["source", "target", "setting", "BN", "seed", "hyper", "plain", "n", "diff (pp, 95% CI)",
              "p (paired t)", "bootstrap 95% CI (pp)"]
    rows = [
        [c.hyper.source, c.hyper.target, _setting(c.hyper), c.hyper.bn_mode, str(c.hyper.seed), c.hyper.model,
         c.plain.model, str(c.stats.n), format_pm(c.stats.diff, c.stats.ci95, signed=True), format_p(c.stats.p_value),
         format_interval(c.stats.boot_low, c.stats.boot_high)]
        for c in comparisons
    ]
    return md_table(header, rows)


def _episode_counts(records: list[ResultRecord]) -> str:
    counts = sorted({r.result.n for r in records})
    return str(counts[0]) if len(counts) == 1 else f"{counts[0]} to {counts[-1]} (see results.csv)"


def accuracy_notes(records: list[ResultRecord], several_seeds: bool) -> list[str]:
    """How the cells over episodes are computed, the rows over seeds (``several_seeds``), the BN
    mode(s) and the grouped targets: with the per-run table, or in the headline when each model
    has one seed (the headline then says the CIs are over episodes only)."""
    seeds = [f"Rows 'mean (k seeds)': {SEED_CI_FORMULA}; a model with one seed has no across-seed CI (1 seed)."]
    return [f"Mean ± 95% CI over {_episode_counts(records)} episodes per cell; {CI_FORMULA}.",
            *(seeds if several_seeds else []),
            *[f"BN mode: {mode} ({BN_MODE_MEANING[mode]})." for mode in sorted({r.bn_mode for r in records})],
            *grouping_lines(records)]


def accuracy_section(records: list[ResultRecord], cells: Sequence[SeedSummary]) -> list[str]:
    """The accuracy of every run (a row per model and seed, and a mean row per model), only when
    some model has several seeds: with one seed each it would repeat the headline."""
    if not any(s.n_seeds > 1 for s in cells):
        return []
    return ["## Accuracy (%) of every run", *accuracy_notes(records, True), *filter(None, [fixed_line(records)]),
            accuracy_table(records, list(cells))]


def paired_section(comparisons: Sequence[Any]) -> list[str]:
    """The paired table of every hyper/plain pair on the same episodes, with its notes."""
    if not comparisons:
        return ["## Paired comparisons: hyper - plain on the same episodes",
                "No hyper/plain pairs on identical episode sets."]
    return ["## Paired comparisons: hyper - plain on the same episodes",
            "Differences in percentage points: mean ± t-based 95% CI of the per-episode difference, two-sided paired "
            "t-test (scipy.stats.ttest_rel), percentile bootstrap CI over episodes "
            f"({comparisons[0].stats.n_boot} resamples, seed {comparisons[0].stats.seed}).",
            paired_table(comparisons), comparisons_note(comparisons)]


def paired_seed_section(pairs: Sequence[SeedSummary]) -> list[str]:
    """The across-seed paired table (only when some pair has several seeds)."""
    if not any(s.n_seeds > 1 for s in pairs):
        return []
    return ["## Paired comparisons across seeds", f"Per seed, {PAIRED_SEED_CI_FORMULA}; one seed: no CI (1 seed).",
            md_table(PAIRED_SEED_HEADER, paired_seed_table(list(pairs)))]


def movement_section(movement: Sequence[dict[str, Any]], labels: dict[str, str]) -> list[str]:
    """The movement-ratio table of paired runs (only when their metrics logged movement);
    ``labels``: layer path -> its name in the paper's words."""
    if not movement:
        return []
    header, rows = ratio_table(movement, labels)
    return ["## Inner-loop movement: generated vs plain weights (paper Figure 4)", f"{RATIO_NOTE}.",
            md_table(header, rows)]


def grouping_lines(records: list[ResultRecord]) -> list[str]:
    """One line per target whose episodes draw their classes within one group (the evaluation
    metadata's ``groups``, ``metahyper.data.groupings``): such tasks are harder than tasks over
    all classes, and the table does not show it."""
    grouped = {(r.target, r.config.get("evaluation", {}).get("groups")) for r in records}
    return [f"Target {target}: each episode's classes come from one group of the grouping '{groups}'."
            for target, groups in sorted(grouped, key=str) if groups]


def error_rate_section(records: list[ResultRecord], cells: Sequence[SeedSummary]) -> list[str]:
    """The error-rate table of the records reported so (``metahyper.eval.error_rate``: Lake's
    one-shot runs); nothing when there are none."""
    entries = error_rates(records, list(cells))
    if not entries:
        return []
    return ["## Error rate (%) on fixed episode sets", f"{ERROR_RATE_NOTE}.", md_table(*error_rate_table(entries))]
