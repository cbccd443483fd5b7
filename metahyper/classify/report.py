"""Reports of classification suites: mean ± std over seeds per model.

``write_classify_report(suite, rows, out_dir)`` writes (atomically):

* ``report.md``: one table row per model: parameters (train / test, millions), seeds, and
  mean ± std (sample std, ddof=1, over seeds) of test accuracy (%), SWA accuracy, Ukai's
  x<n> model-averaging accuracies and quadruple-fault counts, where any run has them;
* ``results.csv``: one row per run (accuracies as fractions);
* ``results.json``: the suite config, the runs, the per-model summary, the environment;
* ``val_curves.png``: test accuracy per epoch of every run (``eval.plots.plot_validation``).
"""

from __future__ import annotations

import csv
import io
import json
import math
from pathlib import Path
from typing import Any

import numpy as np

from metahyper.atomic import write_text_atomic
from metahyper.classify.train import METRICS_NAME
from metahyper.config import to_dict
from metahyper.eval.plots import plot_validation
from metahyper.eval.records import collect_environment
from metahyper.eval.stats import format_pm
from metahyper.meta.metrics_log import MetricsLog

STD_NOTE = "mean ± sample standard deviation (ddof=1) over seeds; a single seed shows its value alone"
ROW_KEYS = ("label", "model", "seed", "params_train", "params_test", "run_dir", "config_hash")
COUNT_METRICS = ("quadruple_faults",)


def metric_columns(rows: list[dict[str, Any]]) -> list[str]:
    """Result columns present in any row, in first-seen order."""
    return list(dict.fromkeys(key for row in rows for key in row if key not in ROW_KEYS))


def summarize(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Per label: model, parameter counts, seeds and {metric: {mean, std, n}} (std None if n < 2)."""
    summary = []
    for label in dict.fromkeys(row["label"] for row in rows):
        runs = [row for row in rows if row["label"] == label]
        metrics = {}
        for key in metric_columns(runs):
            values = np.asarray([row[key] for row in runs if key in row], dtype=np.float64)
            std = float(values.std(ddof=1)) if len(values) > 1 else None
            metrics[key] = {"mean": float(values.mean()), "std": std, "n": len(values)}
        first = runs[0]
        summary.append({"label": label, "model": first["model"], "params_train": first["params_train"],
                        "params_test": first["params_test"], "seeds": [row["seed"] for row in runs],
                        "metrics": metrics})
    return summary


def _cell(key: str, stat: dict[str, Any] | None) -> str:
    if stat is None:
        return "–"
    if key in COUNT_METRICS:
        return f"{stat['mean']:.1f}" + ("" if stat["std"] is None else f" ± {stat['std']:.1f}")
    if stat["std"] is None:
        return f"{100 * stat['mean']:.2f}"
    return format_pm(stat["mean"], stat["std"])


def _title(key: str) -> str:
    return {"test_accuracy": "test acc (%)", "swa_accuracy": "SWA acc (%)",
            "quadruple_faults": "quadruple faults"}.get(key, key.replace("accuracy_", "acc ") + " (%)")


def markdown(suite: Any, summary: list[dict[str, Any]], columns: list[str], figure: bool) -> str:
    """The text of ``report.md``."""
    header = ["model", "name", "params train / test (M)", "seeds"] + [_title(key) for key in columns]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for entry in summary:
        cells = [entry["label"], entry["model"], f"{entry['params_train'] / 1e6:.3f} / {entry['params_test'] / 1e6:.3f}",
                 str(len(entry["seeds"]))] + [_cell(key, entry["metrics"].get(key)) for key in columns]
        lines.append("| " + " | ".join(cells) + " |")
    data = suite.data
    parts = [f"# {suite.name}", suite.description or "", "## Results", f"{STD_NOTE}. Seeds: {list(suite.seeds)}.",
             "\n".join(lines),
             f"Data: {data.dataset} (root {data.root}, holdout_per_class {data.holdout_per_class}). "
             f"Training: {json.dumps(suite.train)} plus per-model overrides (see results.json)."]
    if figure:
        parts += ["## Test accuracy per epoch", "One line per run; the x axis counts epochs.",
                  "![test accuracy per epoch](val_curves.png)"]
    env = ", ".join(f"{key} {value}" for key, value in collect_environment().items())
    parts += ["## Environment", env, "Data: results.csv (accuracies as fractions), results.json."]
    return "\n\n".join(part for part in parts if part) + "\n"


def render_csv(rows: list[dict[str, Any]], columns: list[str]) -> str:
    """One line per run: identity, parameter counts, metric columns (blank where absent)."""
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=[*ROW_KEYS, *columns], lineterminator="\n", restval="")
    writer.writeheader()
    writer.writerows(rows)
    return buffer.getvalue()


def write_classify_report(suite: Any, rows: list[dict[str, Any]], out_dir: Path) -> list[Path]:
    """Write report.md, results.csv, results.json and val_curves.png; returns their paths."""
    if not rows:
        raise ValueError("write_classify_report needs at least one run row")
    if any(isinstance(v, float) and not math.isfinite(v) for row in rows for v in row.values()):
        raise ValueError("a run row holds a non-finite number; refusing to write a report with it")
    out_dir.mkdir(parents=True, exist_ok=True)
    columns, summary = metric_columns(rows), summarize(rows)
    runs = {f"{row['label']} (seed {row['seed']})": MetricsLog(out_dir / row["run_dir"] / METRICS_NAME).read()
            for row in rows}
    figure = out_dir / "val_curves.png"
    drawn = plot_validation(runs, figure) is None
    if not drawn:
        figure.unlink(missing_ok=True)
    document = {"suite": to_dict(suite), "std": STD_NOTE, "runs": rows, "summary": summary,
                "environment": collect_environment()}
    written = [out_dir / "results.csv", out_dir / "results.json", out_dir / "report.md"]
    write_text_atomic(written[0], render_csv(rows, columns))
    write_text_atomic(written[1], json.dumps(document, indent=2, allow_nan=False) + "\n")
    write_text_atomic(written[2], markdown(suite, summary, columns, drawn))
    return written + ([figure] if drawn else [])
