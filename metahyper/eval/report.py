"""Benchmark reports: ``report.md``, ``results.csv``, ``results.json`` and PNG figures.

``write_report(records, out_dir, metrics=..., suite=..., markers=...)`` turns evaluation records
(``ResultRecord`` or dicts/dataclasses with its fields) into:

* ``report.md``, readable without the README (sections in ``metahyper.eval.suite_info``,
  ``metahyper.eval.headline``, ``metahyper.eval.settings`` and ``metahyper.eval.sections``):
  the suite's name and description as the title; a line saying how it was made (package version
  and git commit, date, devices, CPU threads, compute per stage summed over the runs); a caveat
  when some model has one training seed (a pipeline check, not a result); the data (each split
  with its image size, reader options and episode grouping); the headline table in the paper's
  layout (models x target way/shot, chance level, the published numbers in rows under ours with
  the protocol differences below, notes on cells whose model was meta-trained at another shot,
  a table of published numbers with no column); the settings of every model and, when the suite
  has a ``provenance`` section, where each setting comes from; the accuracy of every run when
  some model has several seeds (with one seed each it would repeat the headline); error rates of
  targets reported so; the paired hyper - plain tables (per seed, across seeds); the movement
  ratios; the figures and notes. Every table names a run by its model and seed;
* ``results.csv``: one row per record (per seed), accuracies as fractions;
* ``results.json``: the same plus per-episode accuracies, configs, seeds, episode-set hashes,
  paired comparisons, the across-seed summaries, the movement ratios, the published numbers,
  the settings' provenance, the environment and how the report was made;
* ``accuracy_vs_shots.png`` from the records; ``val_curves.png``, ``movement.png``,
  ``movement_curves.png`` (paper Figure 4: ``metahyper.eval.figure4``), ``norm_ratio.png`` from
  meta-training metrics records. Layers are named in the paper's words
  (``metahyper.models.layer_names``).

Every file is written atomically, so a report being rebuilt never shows half a file.
"""

from __future__ import annotations

import csv
import io
import json
import math
import os
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Iterable, Mapping

from metahyper.atomic import write_text_atomic
from metahyper.config import config_hash, to_dict
from metahyper.eval.error_rate import ERROR_RATE_NOTE, error_rates
from metahyper.eval.figure4 import TITLE as FIGURE4_TITLE, plot_figure4
from metahyper.eval.headline import ACCURACY_VS_SHOTS, headline_table, plot_accuracy_vs_shots
from metahyper.eval.movement import layer_labels, movement_pairs, movement_ratios, plot_movement, RATIO_NOTE
from metahyper.eval.plots import Runs, plot_norm_ratio, plot_validation
from metahyper.eval.records import ResultRecord, as_record, collect_environment, find_pairs
from metahyper.eval.sections import (accuracy_notes, accuracy_section, cell_key, error_rate_section, method_name,
                                     movement_section, paired_section, paired_seed_section, pipeline_caveat)
from metahyper.eval.seeds import (PAIR_FIELDS, PAIRED_SEED_CI_FORMULA, RECORD_FIELDS, SEED_CI_FORMULA, SeedSummary,
                                  paired_seed_summaries, seed_summaries, summary_json)
from metahyper.eval.settings import run_infos, settings_section, val_settings
from metahyper.eval.stats import CI_FORMULA, PairedResult, paired_comparison
from metahyper.eval.suite_info import (data_section, made_line, ours_lines, provenance_section, suite_of,
                                       title_lines)
from metahyper.suite.paper import PaperResult, paper_results
from metahyper.suite.provenance import SettingSource, setting_sources

CSV_COLUMNS = ("model", "source", "target", "way", "shot", "bn_mode", "seed", "n", "mean", "ci95",
               "episodes_hash", "config_hash")
FIGURES = {
    "val_curves.png": "Validation accuracy (paper Figure 5)",
    "movement.png": "Inner-loop movement of every layer relative to its weight (cf. paper Figure 4)",
    "movement_curves.png": FIGURE4_TITLE,
    "norm_ratio.png": "||P|| / ||grad P|| per role (paper Figure 2)",
}


@dataclass(frozen=True)
class Comparison:
    """A hyper record, its plain baseline on the same episodes, and their paired statistics."""

    hyper: ResultRecord
    plain: ResultRecord
    stats: PairedResult


@dataclass(frozen=True)
class Summary:
    """What the report shows beyond the records: per-seed comparisons, across-seed summaries
    (cells and pairs), movement ratios of paired runs, figures and notes; the published numbers,
    the suite (as saved, or a record's one-run suite), where its settings come from, the layer
    names, and the line saying how the report was made."""

    comparisons: list[Comparison]
    cells: list[SeedSummary]
    pairs: list[SeedSummary]
    movement: list[dict[str, Any]]
    figures: list[tuple[str, str]]
    notes: list[str]
    paper: tuple[PaperResult, ...] = ()
    suite: Mapping[str, Any] | None = None
    sources: Mapping[str, SettingSource] = field(default_factory=dict)
    labels: Mapping[str, str] = field(default_factory=dict)
    made: str = ""

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
    suite: Mapping[str, Any] | None = None,
    markers: Iterable[Mapping[str, Any]] = (),
) -> list[Path]:
    """Write the report files into ``out_dir`` and return their paths.

    ``metrics`` maps a run folder to its meta-training metrics records (``MetricsLog(run_dir /
    "metrics.jsonl").read()``; shape in ``metahyper.eval.plots``); ``environment`` defaults to
    ``collect_environment()``; ``n_boot``/``seed`` drive the paired bootstrap; ``paper`` holds
    published numbers (``PaperResult`` s or their dicts: a suite's ``paper`` section) for the
    headline table; ``notes`` (e.g. targets the evaluation skipped) head the report's notes;
    ``suite`` is the suite as saved (``suite.yaml``: title, data, ``provenance``; default: the
    one-run suite a record carries); ``markers`` are the stages' ``done.json`` contents (compute
    time, devices, threads). Records are validated before anything is written.
    """
    checked = [as_record(item, where=f"result {i}") for i, item in enumerate(records)]
    if not checked:
        raise ValueError("write_report needs at least one result record")
    published, markers = tuple(paper_results(paper)), list(markers)
    sources = setting_sources((suite or {}).get("provenance") or {}, "suite.yaml: provenance")
    _check_unique_cells(checked)
    pairs, pair_notes = find_pairs(checked)
    comparisons = [Comparison(h, p, paired_comparison(h.per_episode, p.per_episode, n_boot, seed))
                   for h, p in pairs]
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    cells, runs = seed_summaries(checked), metrics or {}
    infos = run_infos(checked)
    run_pairs = movement_pairs(comparisons, {run: info.group for run, info in infos.items()})
    labels = layer_labels(runs, {run: info.architecture for run, info in infos.items()})
    figures, figure_notes = _write_figures(out, runs, run_pairs, checked, cells, labels)
    env = dict(environment) if environment is not None else collect_environment()
    made = made_line(env, markers, datetime.now(timezone.utc).date().isoformat())
    summary = Summary(comparisons, cells, paired_seed_summaries(comparisons), movement_ratios(runs, run_pairs), figures,
                      [*notes, *pair_notes, *figure_notes], published, suite_of(checked, suite), sources, labels, made)
    written = [out / "results.csv", out / "results.json", out / "report.md"]
    write_text_atomic(written[0], render_csv(checked))
    write_text_atomic(written[1], render_json(checked, summary, env))
    write_text_atomic(written[2], render_markdown(checked, summary, env))
    return written + [out / name for name, _ in figures]


def _check_unique_cells(records: list[ResultRecord]) -> None:
    seen: dict[tuple, int] = {}
    for i, record in enumerate(records):
        j = seen.setdefault(cell_key(record), i)
        if j != i:
            raise ValueError(
                f"results {j} and {i} are both {record.model} ({record.source}, {record.bn_mode}, seed "
                f"{record.seed}) on {record.target} {record.way}-way {record.shot}-shot; keep one"
            )


def _write_figures(out: Path, runs: Runs, pairs: list, records: list[ResultRecord], cells: list[SeedSummary],
                   labels: Mapping[str, str]) -> tuple[list[tuple[str, str]], list[str]]:
    """Draw the accuracy-vs-shots figure from the records and the others from each run's metrics
    (Figure 4 from the hyper/plain run ``pairs``: ``metahyper.eval.movement.RunPair``); returns
    ((file, title) written, notes). Runs are named by model and seed, layers by ``labels``.

    A figure skipped this time is deleted, so a rebuilt report never shows a stale one.
    """
    settings, infos = val_settings(records), run_infos(records)
    notes = [f"no metrics records for {infos[run].name if run in infos else run}; it is missing from the figures"
             for run, logged in runs.items() if not logged]
    written = []
    plots = {ACCURACY_VS_SHOTS[0]: lambda path: plot_accuracy_vs_shots(records, cells, path),
             "val_curves.png": lambda path: plot_validation(runs, path, settings),
             "movement.png": lambda path: plot_movement(runs, path, {run: s.label for run, s in settings.items()},
                                                        labels),
             "movement_curves.png": lambda path: plot_figure4(runs, pairs, path, labels),
             "norm_ratio.png": lambda path: plot_norm_ratio(runs, path, {run: i.name for run, i in infos.items()})}
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


def render_markdown(records: list[ResultRecord], summary: Summary, environment: Mapping[str, str]) -> str:
    """The text of ``report.md`` (module docstring)."""
    methods = {r.model: method_name(r) for r in records}
    several, suite = summary.several_seeds, summary.suite
    parts = [
        *title_lines(suite), *pipeline_caveat(records), summary.made, *data_section(suite),
        "## Headline: accuracy (%)",
        *headline_table(records, summary.cells, methods, summary.paper, ours_lines(suite, summary.sources),
                        [] if several else accuracy_notes(records, False)),
        "## Settings", *settings_section(records), *provenance_section(suite, summary.sources),
        *accuracy_section(records, summary.cells), *error_rate_section(records, summary.cells),
        *paired_section(summary.comparisons), *paired_seed_section(summary.pairs),
        *movement_section(summary.movement, summary.labels),
        "## Figures", *[f"### {title}\n![{title}]({name})" for name, title in summary.figures],
    ]
    if summary.notes:
        parts += ["## Notes", "\n".join(f"- {note}" for note in summary.notes)]
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
    summaries, the movement ratios (with the layers' names), the published numbers, the
    settings' provenance, the environment and the line saying how the report was made."""
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
                "layer_names": dict(summary.labels), "paper": [to_dict(p) for p in summary.paper],
                "provenance": {key: to_dict(s) for key, s in summary.sources.items()}, "made": summary.made.strip("_")}
    return json.dumps(_finite_or_text(document), indent=2, allow_nan=False) + "\n"
