"""Benchmark reports: ``report.md``, ``results.csv``, ``results.json`` and PNG figures.

``write_report(records, out_dir, metrics=...)`` turns evaluation records (``ResultRecord`` or
dicts/dataclasses with its fields) into:

* ``report.md``: a caveat at the top when some model has one training seed (a pipeline check,
  not a result); the headline table in the paper's layout (models x target way/shot, chance
  level, the suite's published numbers beside ours; ``metahyper.eval.headline``); the settings
  of every model (``metahyper.eval.settings``); the full accuracy table (rows: model and seed,
  with source and BN mode when they vary; cells "58.00 ± 0.80", percent), the CI formula and BN
  mode(s); a paired table for every hyper-vs-plain pair on the same episodes with a note on how
  many tests that is; with several seeds per model, a "mean (k seeds)" row under each model's
  per-seed rows and a table of the per-seed paired differences with their mean over seeds
  (``metahyper.eval.seeds``); the inner-loop movement ratio of every hyper/plain pair of runs
  (``metahyper.eval.movement``); the error rates of targets reported so (Lake's one-shot runs:
  ``metahyper.eval.error_rate``); the figures and notes on anything skipped. Fields with one
  value in every record (source, BN mode, seed) are stated once above a table, not in columns;
* ``results.csv``: one row per record (per seed), accuracies as fractions;
* ``results.json``: the same plus per-episode accuracies, configs, seeds, episode-set hashes,
  paired comparisons, the across-seed summaries, the movement ratios and the environment;
* ``accuracy_vs_shots.png`` from the records; ``val_curves.png``, ``movement.png``,
  ``movement_curves.png``, ``norm_ratio.png`` from meta-training metrics records.

Every file is written atomically, so a report being rebuilt never shows half a file.
"""

from __future__ import annotations

import csv
import io
import json
import math
import os
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Iterable, Mapping

from metahyper.atomic import write_text_atomic
from metahyper.config import config_hash, to_dict
from metahyper.eval.error_rate import ERROR_RATE_NOTE, error_rate_table, error_rates
from metahyper.eval.headline import (ACCURACY_VS_SHOTS, column_name, columns, constant_fields, headline_table,
                                     plot_accuracy_vs_shots, seed_sets)
from metahyper.eval.markdown import md_table
from metahyper.eval.movement import (RATIO_NOTE, movement_pairs, movement_ratios, plot_movement,
                                     plot_movement_curves, ratio_table)
from metahyper.paper import PaperResult, paper_results
from metahyper.eval.plots import Runs, plot_norm_ratio, plot_validation
from metahyper.eval.records import (
    BN_MODE_MEANING,
    ResultRecord,
    as_record,
    collect_environment,
    find_pairs,
)
from metahyper.eval.stats import (
    CI_FORMULA,
    PairedResult,
    format_interval,
    format_p,
    format_pm,
    paired_comparison,
)
from metahyper.eval.settings import settings_section, val_settings
from metahyper.eval.seeds import (
    PAIR_FIELDS,
    PAIRED_SEED_CI_FORMULA,
    PAIRED_SEED_HEADER,
    RECORD_FIELDS,
    SEED_CI_FORMULA,
    SeedSummary,
    paired_seed_summaries,
    paired_seed_table,
    seed_summaries,
    summary_json,
)

CSV_COLUMNS = ("model", "source", "target", "way", "shot", "bn_mode", "seed", "n", "mean", "ci95",
               "episodes_hash", "config_hash")


FIGURES = {
    "val_curves.png": "Validation accuracy (paper Figure 5)",
    "movement.png": "Inner-loop weight movement per layer (paper Figure 4)",
    "movement_curves.png": "Inner-loop movement over meta-training, generated vs plain (paper Figure 4)",
    "norm_ratio.png": "||P|| / ||grad P|| per role (paper Figure 2)",
}
SIGNIFICANCE = 0.05


@dataclass(frozen=True)
class Comparison:
    """A hyper record, its plain baseline on the same episodes, and their paired statistics."""

    hyper: ResultRecord
    plain: ResultRecord
    stats: PairedResult


@dataclass(frozen=True)
class Summary:
    """What the report shows beyond the records: per-seed comparisons, across-seed summaries
    (cells and pairs), movement ratios of paired runs, figures and notes."""

    comparisons: list[Comparison]
    cells: list[SeedSummary]
    pairs: list[SeedSummary]
    movement: list[dict[str, Any]]
    figures: list[tuple[str, str]]
    notes: list[str]
    paper: tuple[PaperResult, ...] = ()

    @property
    def several_seeds(self) -> bool:
        return any(s.n_seeds > 1 for s in self.cells)


def write_report(
    records: Iterable[Any],
    out_dir: str | os.PathLike,
    metrics: Runs | None = None,
    environment: Mapping[str, str] | None = None,
    n_boot: int = 10000,
    seed: int = 0,
    notes: Iterable[str] = (),
    paper: Iterable[Any] = (),
) -> list[Path]:
    """Write the report files into ``out_dir`` and return their paths.

    ``metrics`` maps a run label (the name in figure legends) to its meta-training metrics
    records (``MetricsLog(run_dir / "metrics.jsonl").read()``; shape in ``metahyper.eval.plots``);
    ``environment`` defaults to ``collect_environment()``; ``n_boot``/``seed`` drive the paired
    bootstrap; ``paper`` holds published numbers (``PaperResult`` s or their dicts: a suite's
    ``paper`` section) for the headline table; ``notes`` (e.g. targets the evaluation
    skipped) head the report's notes. Records are validated before anything is written.
    """
    checked = [as_record(item, where=f"result {i}") for i, item in enumerate(records)]
    if not checked:
        raise ValueError("write_report needs at least one result record")
    published = tuple(paper_results(paper))
    _check_unique_cells(checked)
    pairs, pair_notes = find_pairs(checked)
    comparisons = [Comparison(h, p, paired_comparison(h.per_episode, p.per_episode, n_boot, seed))
                   for h, p in pairs]
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    cells = seed_summaries(checked)
    figures, figure_notes = _write_figures(out, metrics or {}, movement_pairs(comparisons), checked, cells)
    summary = Summary(comparisons, cells, paired_seed_summaries(comparisons),
                      movement_ratios(metrics or {}, movement_pairs(comparisons)), figures,
                      [*notes, *pair_notes, *figure_notes], published)
    env = dict(environment) if environment is not None else collect_environment()
    written = [out / "results.csv", out / "results.json", out / "report.md"]
    write_text_atomic(written[0], render_csv(checked))
    write_text_atomic(written[1], render_json(checked, summary, env))
    write_text_atomic(written[2], render_markdown(checked, summary, env))
    return written + [out / name for name, _ in figures]


def _cell_key(record: ResultRecord) -> tuple:
    """(row, column) identity of a record in the accuracy table, flattened."""
    return (record.model, record.source, record.bn_mode, record.seed,
            record.target, record.way, record.shot)


def _check_unique_cells(records: list[ResultRecord]) -> None:
    seen: dict[tuple, int] = {}
    for i, record in enumerate(records):
        j = seen.setdefault(_cell_key(record), i)
        if j != i:
            raise ValueError(
                f"results {j} and {i} are both {record.model} ({record.source}, {record.bn_mode}, seed "
                f"{record.seed}) on {record.target} {record.way}-way {record.shot}-shot; keep one"
            )


def _write_figures(out: Path, runs: Runs, pairs: list[tuple[str, str, int]], records: list[ResultRecord],
                   cells: list[SeedSummary]) -> tuple[list[tuple[str, str]], list[str]]:
    """Draw the accuracy-vs-shots figure from the records and the others from each run's metrics
    (the movement curves of the hyper/plain run ``pairs``); returns ((file, title) written, notes).

    A figure skipped this time is deleted, so a rebuilt report never shows a stale one.
    """
    notes = [f"no metrics records for {label}; it is missing from the figures"
             for label, records in runs.items() if not records]
    written = []
    settings = val_settings(records)
    plots = {ACCURACY_VS_SHOTS[0]: lambda path: plot_accuracy_vs_shots(records, cells, path),
             "val_curves.png": lambda path: plot_validation(runs, path, settings),
             "movement.png": lambda path: plot_movement(runs, path, {run: s.label for run, s in settings.items()}),
             "movement_curves.png": lambda path: plot_movement_curves(runs, pairs, path),
             "norm_ratio.png": lambda path: plot_norm_ratio(runs, path)}
    titles = {ACCURACY_VS_SHOTS[0]: ACCURACY_VS_SHOTS[1], **FIGURES}
    for name, plot in plots.items():
        title = titles[name]
        reason = plot(out / name)
        if reason is None:
            written.append((name, title))
        else:
            (out / name).unlink(missing_ok=True)
            notes.append(f"{title} skipped: {reason}")
    return written, notes


# --- renderers ---------------------------------------------------------------------------------


def _setting(record: ResultRecord) -> str:
    return f"{record.way}-way {record.shot}-shot"


def accuracy_table(records: list[ResultRecord], summaries: list[SeedSummary] = ()) -> str:
    """Markdown table: one row per (model, source, BN mode, seed) with the model's method, one
    column per target setting; source, BN mode and seed get a column only when they vary
    (``constant_fields``; ``fixed_line`` states the others). When some model has several seeds
    (``summaries`` from ``seed_summaries``), every model's per-seed rows are followed by a
    "mean (k seeds)" row: mean ± 95% CI over its seeds."""
    cols = columns(records)
    cells = {(_cell_key(r)[:4], (r.target, r.way, r.shot)): str(r.result) for r in records}
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


def comparisons_note(comparisons: list[Comparison]) -> str:
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


def paired_table(comparisons: list[Comparison]) -> str:
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


def _seed_line(summary: Summary) -> str:
    """How the report treats training seeds (and the across-seed CI formula when it has one)."""
    if summary.several_seeds:
        return f"Rows 'mean (k seeds)': {SEED_CI_FORMULA}; a model with one seed has no across-seed CI (1 seed)."
    return "One seed per model (1 seed): no CI over training seeds; the CIs are over episodes only."


def paired_seed_section(summary: Summary) -> list[str]:
    """The across-seed paired table (only when some pair has several seeds)."""
    if not any(s.n_seeds > 1 for s in summary.pairs):
        return []
    return ["## Paired comparisons across seeds", f"Per seed, {PAIRED_SEED_CI_FORMULA}; one seed: no CI (1 seed).",
            md_table(PAIRED_SEED_HEADER, paired_seed_table(summary.pairs))]


def movement_section(summary: Summary) -> list[str]:
    """The movement-ratio table of paired runs (only when their metrics logged movement)."""
    if not summary.movement:
        return []
    header, rows = ratio_table(summary.movement)
    return ["## Inner-loop movement: generated vs plain weights (paper Figure 4)", f"{RATIO_NOTE}.",
            md_table(header, rows)]


def grouping_lines(records: list[ResultRecord]) -> list[str]:
    """One line per target whose episodes draw their classes within one group (the evaluation
    metadata's ``groups``, ``metahyper.data.groupings``): such tasks are harder than tasks over
    all classes, and the table does not show it."""
    grouped = {(r.target, r.config.get("evaluation", {}).get("groups")) for r in records}
    return [f"Target {target}: each episode's classes come from one group of the grouping '{groups}'."
            for target, groups in sorted(grouped, key=str) if groups]


def error_rate_section(records: list[ResultRecord], summary: Summary) -> list[str]:
    """The error-rate table of the records reported so (``metahyper.eval.error_rate``: Lake's
    one-shot runs); nothing when there are none."""
    entries = error_rates(records, summary.cells)
    if not entries:
        return []
    return ["## Error rate (%) on fixed episode sets", f"{ERROR_RATE_NOTE}.", md_table(*error_rate_table(entries))]


def render_markdown(records: list[ResultRecord], summary: Summary, environment: Mapping[str, str]) -> str:
    """The text of ``report.md``."""
    modes = sorted({r.bn_mode for r in records})
    comparisons, figures, notes = summary.comparisons, summary.figures, summary.notes
    methods = {r.model: method_name(r) for r in records}
    parts = [
        "# metahyper report",
        *pipeline_caveat(records),
        "## Headline: accuracy (%)",
        *headline_table(records, summary.cells, methods, summary.paper),
        "## Settings",
        *settings_section(records),
        "## Accuracy (%) of every run",
        f"Mean ± 95% CI over {_episode_counts(records)} episodes per cell; {CI_FORMULA}.",
        _seed_line(summary),
        *[f"BN mode: {mode} ({BN_MODE_MEANING[mode]})." for mode in modes],
        *grouping_lines(records),
        *filter(None, [fixed_line(records)]),
        accuracy_table(records, summary.cells),
        *error_rate_section(records, summary),
        "## Paired comparisons: hyper - plain on the same episodes",
    ]
    if comparisons:
        parts += [
            "Differences in percentage points: mean ± t-based 95% CI of the per-episode difference, "
            f"two-sided paired t-test (scipy.stats.ttest_rel), percentile bootstrap CI over episodes "
            f"({comparisons[0].stats.n_boot} resamples, seed {comparisons[0].stats.seed}).",
            paired_table(comparisons),
            comparisons_note(comparisons),
        ]
    else:
        parts.append("No hyper/plain pairs on identical episode sets.")
    parts += paired_seed_section(summary) + movement_section(summary)
    parts += ["## Figures"] + [f"### {title}\n![{title}]({name})" for name, title in figures]
    if notes:
        parts += ["## Notes", "\n".join(f"- {note}" for note in notes)]
    env = ", ".join(f"{key} {value}" for key, value in environment.items())
    parts += ["## Environment", env, "Data: results.csv (accuracies as fractions), results.json."]
    return "\n\n".join(parts) + "\n"


def _full_row(record: ResultRecord) -> dict[str, Any]:
    """The record's fields plus episode count, mean and CI half width (fractions), config hash."""
    result = record.result
    return {**to_dict(record), "n": result.n, "mean": result.mean, "ci95": result.ci95,
            "config_hash": config_hash(record.config)}


def render_csv(records: list[ResultRecord]) -> str:
    """The text of ``results.csv``: one row per record (``CSV_COLUMNS``)."""
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=CSV_COLUMNS, lineterminator="\n")
    writer.writeheader()
    for record in records:
        row = _full_row(record)
        writer.writerow({name: row[name] for name in CSV_COLUMNS})
    return buffer.getvalue()


def _finite_or_text(value: Any) -> Any:
    """JSON has no inf/NaN: such floats are written as the strings "inf", "-inf", "nan"."""
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if isinstance(value, dict):
        return {key: _finite_or_text(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite_or_text(item) for item in value]
    return value


def _bootstrap_seed_renamed(stats: dict[str, Any]) -> dict[str, Any]:
    """Paired statistics with their bootstrap ``seed`` as ``bootstrap_seed`` ("seed" is the
    training seed in results.json)."""
    return {("bootstrap_seed" if key == "seed" else key): value for key, value in stats.items()}


def render_json(records: list[ResultRecord], summary: Summary, environment: Mapping[str, str]) -> str:
    """The text of ``results.json``: every record in full, the comparisons, the across-seed
    summaries, the movement ratios, the environment."""
    results = [_full_row(r) for r in records]
    comparisons = summary.comparisons
    paired = [
        {"hyper": c.hyper.model, "plain": c.plain.model, "source": c.hyper.source, "target": c.hyper.target,
         "way": c.hyper.way, "shot": c.hyper.shot, "bn_mode": c.hyper.bn_mode,
         "episodes_hash": c.hyper.episodes_hash, **_bootstrap_seed_renamed(asdict(c.stats)), "seed": c.hyper.seed}
        for c in comparisons
    ]
    document = {"ci_formula": CI_FORMULA, "environment": dict(environment), "results": results,
                "paired": paired, "seed_ci_formula": SEED_CI_FORMULA, "paired_seed_ci_formula": PAIRED_SEED_CI_FORMULA,
                "across_seeds": [summary_json(s, RECORD_FIELDS) for s in summary.cells],
                "paired_across_seeds": [summary_json(s, PAIR_FIELDS) for s in summary.pairs],
                "movement_ratio_note": RATIO_NOTE, "movement_ratios": summary.movement, "notes": summary.notes,
                "error_rate_note": ERROR_RATE_NOTE, "error_rates": error_rates(records, summary.cells),
                "paper": [to_dict(p) for p in summary.paper]}
    return json.dumps(_finite_or_text(document), indent=2, allow_nan=False) + "\n"
