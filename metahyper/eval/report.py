"""Benchmark reports: ``report.md``, ``results.csv``, ``results.json`` and PNG figures.

``write_report(records, out_dir, metrics=...)`` turns evaluation records (``ResultRecord`` or
dicts/dataclasses with its fields) into:

* ``report.md``: accuracy table (rows: model, source, BN mode, seed; columns: target domain and
  way/shot; cells "58.00 ± 0.80", percent), the CI formula and BN mode(s), a paired table for
  every hyper-vs-plain pair on the same episodes, the figures, and notes on anything skipped;
* ``results.csv``: one row per record, accuracies as fractions;
* ``results.json``: the same plus per-episode accuracies, configs, seeds, episode-set hashes,
  paired comparisons and the environment (package versions, device);
* ``val_curves.png``, ``movement.png``, ``norm_ratio.png`` from meta-training metrics records.

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
from metahyper.eval.plots import FIGURES, Runs
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

CSV_COLUMNS = ("model", "source", "target", "way", "shot", "bn_mode", "seed", "n", "mean", "ci95",
               "episodes_hash", "config_hash")


@dataclass(frozen=True)
class Comparison:
    """A hyper record, its plain baseline on the same episodes, and their paired statistics."""

    hyper: ResultRecord
    plain: ResultRecord
    stats: PairedResult


def write_report(
    records: Iterable[Any],
    out_dir: str | os.PathLike,
    metrics: Runs | None = None,
    environment: Mapping[str, str] | None = None,
    n_boot: int = 10000,
    seed: int = 0,
) -> list[Path]:
    """Write the report files into ``out_dir`` and return their paths.

    ``metrics`` maps a run label (the name in figure legends) to its meta-training metrics
    records (``MetricsLog(run_dir / "metrics.jsonl").read()``; shape in ``metahyper.eval.plots``);
    ``environment`` defaults to ``collect_environment()``; ``n_boot``/``seed`` drive the paired
    bootstrap. Records are validated before anything is written.
    """
    checked = [as_record(item, where=f"result {i}") for i, item in enumerate(records)]
    if not checked:
        raise ValueError("write_report needs at least one result record")
    _check_unique_cells(checked)
    pairs, notes = find_pairs(checked)
    comparisons = [Comparison(h, p, paired_comparison(h.per_episode, p.per_episode, n_boot, seed))
                   for h, p in pairs]
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    figures, figure_notes = _write_figures(out, metrics or {})
    notes += figure_notes
    env = dict(environment) if environment is not None else collect_environment()
    written = [out / "results.csv", out / "results.json", out / "report.md"]
    write_text_atomic(written[0], render_csv(checked))
    write_text_atomic(written[1], render_json(checked, comparisons, env, notes))
    write_text_atomic(written[2], render_markdown(checked, comparisons, figures, notes, env))
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


def _write_figures(out: Path, runs: Runs) -> tuple[list[tuple[str, str]], list[str]]:
    """Draw the figures from each run's metrics; returns ((file, title) written, notes).

    A figure skipped this time is deleted, so a rebuilt report never shows a stale one.
    """
    notes = [f"no metrics records for {label}; it is missing from the figures"
             for label, records in runs.items() if not records]
    written = []
    for name, title, plot in FIGURES:
        reason = plot(runs, out / name)
        if reason is None:
            written.append((name, title))
        else:
            (out / name).unlink(missing_ok=True)
            notes.append(f"{title} skipped: {reason}")
    return written, notes


# --- renderers ---------------------------------------------------------------------------------


def _md_table(header: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


def _setting(record: ResultRecord) -> str:
    return f"{record.way}-way {record.shot}-shot"


def accuracy_table(records: list[ResultRecord]) -> str:
    """Markdown table: one row per (model, source, BN mode, seed), one column per target setting."""
    targets = list(dict.fromkeys(r.target for r in records))
    columns = sorted({(r.target, r.way, r.shot) for r in records}, key=lambda c: (targets.index(c[0]), c[1:]))
    rows = list(dict.fromkeys((r.model, r.source, r.bn_mode, r.seed) for r in records))
    cells = {(_cell_key(r)[:4], (r.target, r.way, r.shot)): str(r.result) for r in records}
    header = ["model", "source", "BN", "seed"] + [f"{t} {w}-way {s}-shot" for t, w, s in columns]
    body = [[*map(str, row)] + [cells.get((row, column), "–") for column in columns] for row in rows]
    return _md_table(header, body)


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
    return _md_table(header, rows)


def _episode_counts(records: list[ResultRecord]) -> str:
    counts = sorted({r.result.n for r in records})
    return str(counts[0]) if len(counts) == 1 else f"{counts[0]} to {counts[-1]} (see results.csv)"


def render_markdown(
    records: list[ResultRecord],
    comparisons: list[Comparison],
    figures: list[tuple[str, str]],
    notes: list[str],
    environment: Mapping[str, str],
) -> str:
    """The text of ``report.md``."""
    modes = sorted({r.bn_mode for r in records})
    parts = [
        "# metahyper report",
        "## Accuracy (%)",
        f"Mean ± 95% CI over {_episode_counts(records)} episodes per cell; {CI_FORMULA}.",
        *[f"BN mode: {mode} ({BN_MODE_MEANING[mode]})." for mode in modes],
        accuracy_table(records),
        "## Paired comparisons: hyper - plain on the same episodes",
    ]
    if comparisons:
        parts += [
            "Differences in percentage points: mean ± t-based 95% CI of the per-episode difference, "
            f"two-sided paired t-test (scipy.stats.ttest_rel), percentile bootstrap CI over episodes "
            f"({comparisons[0].stats.n_boot} resamples, seed {comparisons[0].stats.seed}).",
            paired_table(comparisons),
        ]
    else:
        parts.append("No hyper/plain pairs on identical episode sets.")
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


def render_json(
    records: list[ResultRecord],
    comparisons: list[Comparison],
    environment: Mapping[str, str],
    notes: list[str],
) -> str:
    """The text of ``results.json``: every record in full, the comparisons, the environment."""
    results = [_full_row(r) for r in records]
    paired = [
        {"hyper": c.hyper.model, "plain": c.plain.model, "source": c.hyper.source, "target": c.hyper.target,
         "way": c.hyper.way, "shot": c.hyper.shot, "bn_mode": c.hyper.bn_mode, "seed": c.hyper.seed,
         "episodes_hash": c.hyper.episodes_hash, **asdict(c.stats)}
        for c in comparisons
    ]
    document = {"ci_formula": CI_FORMULA, "environment": dict(environment), "results": results,
                "paired": paired, "notes": notes}
    return json.dumps(_finite_or_text(document), indent=2, allow_nan=False) + "\n"
