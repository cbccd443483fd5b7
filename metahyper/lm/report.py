"""Reports of language-model suites: test bits per character with across-seed confidence intervals.

``write_lm_report(suite, rows, corpus, out_dir)`` writes (atomically):

* ``report.md``: one row per model: cell, parameters (all / hypernetwork), seeds, test and
  validation bpc as mean ± the t-based 95% CI over seeds (``metahyper.eval.stats.mean_ci``; a
  single seed shows its value alone), per-seed test bpc; then per model the text sampled from
  its first seed's best weights and, for a HyperLSTM, the weight-change figure (Ha et al.'s
  Figure 4, ``metahyper.lm.sample``);
* ``results.csv`` (one row per run), ``results.json`` (suite, runs, summary, samples,
  environment) and ``valid_bpc.png`` (validation bpc per step of every run).
"""

from __future__ import annotations

import csv
import io
import json
import math
from pathlib import Path
from typing import Any

from metahyper.atomic import write_text_atomic
from metahyper.checkpoint import load_checkpoint
from metahyper.classify.suite import _slug
from metahyper.config import to_dict
from metahyper.eval.plots import plt, save_figure, series
from metahyper.eval.records import collect_environment
from metahyper.eval.stats import CI_FORMULA, mean_ci
from metahyper.lm.data import UNKNOWN, Corpus
from metahyper.lm.model import seeded_model
from metahyper.lm.sample import generate, plot_weight_changes
from metahyper.lm.train import BEST_NAME, METRICS_NAME
from metahyper.meta.metrics_log import MetricsLog

CI_NOTE = (f"mean ± 95% CI over seeds ({CI_FORMULA.replace('per-episode accuracies', 'per-seed bpc')}); "
           "a single seed shows its value alone")
ROW_KEYS = ("label", "cell", "seed", "params", "params_hypernet", "run_dir", "config_hash",
            "valid_bpc", "test_bpc", "best_step")


def _stat(values: list[float]) -> str:
    if len(values) < 2:
        return f"{values[0]:.4f}"
    mean, half = mean_ci(values)
    return f"{mean:.4f} ± {half:.4f}"


def summarize(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Per label: cell, parameter counts, seeds, per-seed and summarised valid/test bpc."""
    summary = []
    for label in dict.fromkeys(row["label"] for row in rows):
        runs = [row for row in rows if row["label"] == label]
        entry = {key: runs[0][key] for key in ("label", "cell", "params", "params_hypernet")}
        entry["seeds"] = [row["seed"] for row in runs]
        for key in ("valid_bpc", "test_bpc"):
            values = [row[key] for row in runs]
            ci = mean_ci(values) if len(values) > 1 else (values[0], None)
            entry[key] = {"values": values, "mean": ci[0], "ci95": ci[1], "text": _stat(values)}
        summary.append(entry)
    return summary


def samples(suite: Any, rows: list[dict[str, Any]], corpus: Corpus, out_dir: Path) -> dict[str, dict[str, Any]]:
    """Per label: text sampled from its first run's best weights, and its weight-change figure."""
    index = {s: i for i, s in enumerate(corpus.vocab)}
    prime = [index.get(c, index.get(UNKNOWN, 0)) for c in suite.sample.prime]
    result = {}
    for spec in suite.models:
        row = next(r for r in rows if r["label"] == spec.label)
        model = seeded_model(len(corpus.vocab), spec.cell, spec.options, row["seed"])
        model.load_state_dict(load_checkpoint(out_dir / row["run_dir"] / BEST_NAME)["model"])
        ids, changes = generate(model, prime, suite.sample.length, suite.sample.temperature, suite.sample.seed)
        text = corpus.decode(ids)
        entry = {"seed": row["seed"], "text": text, "figure": None}
        if changes is not None:
            entry["figure"] = f"weight_changes_{_slug(spec.label)}.png"
            entry["changes"] = changes
            plot_weight_changes(text, changes, out_dir / entry["figure"])
        result[spec.label] = entry
    return result


def plot_valid(rows: list[dict[str, Any]], out_dir: Path, path: Path) -> None:
    """Validation bpc against the step, one line per run."""
    fig, ax = plt.subplots(figsize=(6, 4))
    for row in rows:
        steps, values = series(MetricsLog(out_dir / row["run_dir"] / METRICS_NAME).read(), "bpc", "val")
        ax.plot(steps, values, marker=".", label=f"{row['label']} (seed {row['seed']})")
    ax.set_xlabel("training step")
    ax.set_ylabel("validation bits per character")
    ax.legend(fontsize=7)
    save_figure(fig, path)


def markdown(suite: Any, summary: list[dict[str, Any]], sampled: dict[str, dict[str, Any]], corpus: Corpus) -> str:
    """The text of ``report.md``."""
    header = ["model", "cell", "params (hypernet)", "seeds", "test bpc", "valid bpc", "test bpc per seed"]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for e in summary:
        per_seed = ", ".join(f"{v:.4f}" for v in e["test_bpc"]["values"])
        lines.append(f"| {e['label']} | {e['cell']} | {e['params']:,} ({e['params_hypernet']:,}) | {len(e['seeds'])} "
                     f"| {e['test_bpc']['text']} | {e['valid_bpc']['text']} | {per_seed} |")
    parts = [f"# {suite.name}", suite.description, "## Results",
             f"Bits per character of each run's best-validation weights on the whole test stream. {CI_NOTE}. "
             f"Seeds: {list(suite.seeds)}.", "\n".join(lines),
             f"Data: {corpus.summary()}. Training: {json.dumps(suite.train)} plus per-model settings "
             "(results.json).", "## Validation bpc during training", "![validation bpc](valid_bpc.png)",
             "## Samples", f"Prime {suite.sample.prime!r}, temperature {suite.sample.temperature}, "
             f"{suite.sample.length} characters, from each model's first seed."]
    for label, entry in sampled.items():
        parts += [f"### {label} (seed {entry['seed']})", "```text\n" + entry["text"] + "\n```"]
        if entry["figure"]:
            parts.append("Norm of the change of the main LSTM's effective weight matrices at each generated "
                         f"character (Ha et al., Figure 4):\n\n![weight changes]({entry['figure']})")
    env = ", ".join(f"{key} {value}" for key, value in collect_environment().items())
    parts += ["## Environment", env, "Data: results.csv, results.json."]
    return "\n\n".join(part for part in parts if part) + "\n"


def write_lm_report(suite: Any, rows: list[dict[str, Any]], corpus: Corpus, out_dir: Path) -> list[Path]:
    """Write report.md, results.csv, results.json, valid_bpc.png and the sample figures."""
    if not rows or any(isinstance(v, float) and not math.isfinite(v) for row in rows for v in row.values()):
        raise ValueError("write_lm_report needs run rows with finite numbers")
    summary, sampled = summarize(rows), samples(suite, rows, corpus, out_dir)
    plot_valid(rows, out_dir, out_dir / "valid_bpc.png")
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=ROW_KEYS, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    document = {"suite": to_dict(suite), "ci": CI_NOTE, "runs": rows, "summary": summary, "samples": sampled,
                "environment": collect_environment()}
    written = [out_dir / "results.csv", out_dir / "results.json", out_dir / "report.md", out_dir / "valid_bpc.png"]
    write_text_atomic(written[0], buffer.getvalue())
    write_text_atomic(written[1], json.dumps(document, indent=2, allow_nan=False) + "\n")
    write_text_atomic(written[2], markdown(suite, summary, sampled, corpus))
    figures = [out_dir / e["figure"] for e in sampled.values() if e["figure"]]
    return written + figures
