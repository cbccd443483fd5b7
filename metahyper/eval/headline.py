"""The report's headline: accuracy in the paper's layout, and the same numbers as a figure.

Rows are models (each meta-trained run and each baseline, its seeds merged), columns are each
target at way/shot, as in Babu et al.'s Tables 7 and 8 (models x 1-shot / 5-shot). A cell is
the mean over the model's training seeds with the t-CI over seeds when it has several, else the
mean over episodes with the per-episode CI (``headline_cells``). A "chance" row gives 100/way;
the suite's published numbers (``metahyper.suite.paper``) sit in a row "model (source)" under our
model's row, or in rows of their own for other models, with the protocol differences listed
under the table; a number that fits no column goes to a table of its own. A cell whose model was
meta-trained at another shot than the column's gets a note (``shot_notes``). A field that holds
one value in every row (source domain, BN mode, seeds) is stated once above the table instead
of in a column (``constant_fields``). ``plot_accuracy_vs_shots`` draws the cells at each shot
with their CIs and the chance level.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any, Sequence

from metahyper.eval.markdown import md_table
from metahyper.eval.plots import plt, save_figure
from metahyper.eval.seeds import SeedSummary, record_key
from metahyper.eval.settings import training_shots
from metahyper.eval.stats import format_pm
from metahyper.suite.paper import PaperResult

Column = tuple[str, int, int]  # target, way, shot
Row = tuple[str, str, str]  # model, source, BN mode
CELL_NOTES = {True: "Cells: mean ± 95% CI over the training seeds (t-interval over the seed means) where a model "
                    "has several seeds, else over the evaluation episodes (see the full table below).",
              False: "Cells: mean ± 95% CI over the evaluation episodes (one training seed per model)."}


@dataclass(frozen=True)
class Cell:
    """A headline cell: mean accuracy and 95% CI half width (fractions) over ``n_seeds`` seeds,
    or over episodes when ``n_seeds`` is 1."""

    mean: float
    ci95: float
    n_seeds: int

    def text(self) -> str:
        return format_pm(self.mean, self.ci95)


def columns(records: Sequence[Any]) -> list[Column]:
    """(target, way, shot) of every record: targets in order of appearance, then way and shot."""
    targets = list(dict.fromkeys(r.target for r in records))
    return sorted({(r.target, r.way, r.shot) for r in records}, key=lambda c: (targets.index(c[0]), c[1:]))


def column_name(column: Column) -> str:
    target, way, shot = column
    return f"{target} {way}-way {shot}-shot"


def headline_cells(records: Sequence[Any], summaries: Sequence[SeedSummary]) -> dict[tuple[Row, Column], Cell]:
    """Each (model row, column)'s cell: over seeds (``summaries`` from ``seed_summaries``) when
    there are several, else the single record's per-episode mean and CI."""
    single = {record_key(r): r.result for r in records}
    cells = {}
    for s in summaries:
        model, source, bn_mode, target, way, shot = s.key
        if s.n_seeds > 1:
            cell = Cell(s.mean, s.ci95, s.n_seeds)
        else:
            cell = Cell(single[s.key].mean, single[s.key].ci95, 1)
        cells[(model, source, bn_mode), (target, way, shot)] = cell
    return cells


def constant_fields(records: Sequence[Any]) -> dict[str, str]:
    """Report-table fields with one value in every record: "source", "BN" and "seed" -> that value."""
    found = {}
    for name, attribute in (("source", "source"), ("BN", "bn_mode"), ("seed", "seed")):
        values = {str(getattr(r, attribute)) for r in records}
        if len(values) == 1:
            found[name] = values.pop()
    return found


def seed_sets(records: Sequence[Any]) -> dict[Row, tuple[int, ...]]:
    """The training seeds of each model row."""
    found: dict[Row, set[int]] = {}
    for r in records:
        found.setdefault((r.model, r.source, r.bn_mode), set()).add(r.seed)
    return {row: tuple(sorted(seeds)) for row, seeds in found.items()}


def _fixed_line(records: Sequence[Any], seeds: dict[Row, tuple[int, ...]]) -> tuple[str, bool]:
    """("Source: x · BN mode: y · seeds: 0, 1, 2 (every model)", whether rows need a seeds column)."""
    fixed = constant_fields(records)
    parts = [f"source domain: {fixed['source']}"] if "source" in fixed else []
    parts += [f"BN mode: {fixed['BN']}"] if "BN" in fixed else []
    same_seeds = len(set(seeds.values())) == 1
    if same_seeds:
        only = next(iter(seeds.values()))
        parts.append(f"training seed{'s' if len(only) > 1 else ''}: {', '.join(map(str, only))} (every model)")
    text = " · ".join(parts)
    return text[:1].upper() + text[1:], not same_seeds


def headline_table(records: Sequence[Any], summaries: Sequence[SeedSummary], methods: dict[str, str],
                   paper: Sequence[PaperResult] = (), differences: Sequence[str] = (),
                   explained: Sequence[str] = ()) -> list[str]:
    """The headline section's lines: the fixed fields, how cells are computed (and the
    ``explained`` lines: the CI formula when no other table gives it), the table (a published
    number in a row under the model's, or in a row of its own), the protocol differences (each
    placed number's note, then ``differences``: lines of settings that are ours), which shot
    each model was meta-trained at where it differs (``shot_notes``), and a table of the
    published numbers that fit no column. ``methods`` maps a model to its method."""
    cols, cells, seeds = columns(records), headline_cells(records, summaries), seed_sets(records)
    fixed, seed_column = _fixed_line(records, seeds)
    varying = [name for name in ("source", "BN") if name not in constant_fields(records)]
    header = ["model", "method", *varying, *(["seeds"] if seed_column else []), *map(column_name, cols)]
    pad = [""] * (len(header) - len(cols) - 2)
    body = [["chance (100/way)", "", *pad] + [f"{100 / way:.2f}" for _, way, _ in cols]]
    rows = list(dict.fromkeys(row for row, _ in cells))
    for row in rows:
        named = {"source": row[1], "BN": row[2]}
        extra = [named[name] for name in varying] + ([str(len(seeds[row]))] if seed_column else [])
        cell_texts = [cells[row, c].text() if (row, c) in cells else "–" for c in cols]
        body.append([row[0], methods.get(row[0], "–"), *extra, *cell_texts])
        if row == next(r for r in rows if r[0] == row[0]):  # the model's published numbers, once
            body += _published_rows([p for p in paper if p.model == row[0]], cols, pad)
    models = {row[0] for row in rows}
    body += _published_rows([p for p in paper if p.model not in models], cols, pad)
    lines = [fixed, CELL_NOTES[any(c.n_seeds > 1 for c in cells.values())], *explained, md_table(header, body)]
    placed = [p for p in paper if _placed(p, cols)]
    notes = [f"- {p.model} ({p.source}): {p.note}" for p in placed if p.note] + list(differences)
    if placed and notes:
        lines.append("Protocol differences between the published numbers and ours:\n" + "\n".join(notes))
    lines += shot_notes(records)
    lost = [[p.model, f"{p.way}-way {p.shot}-shot{_on(p)}", p.cell(), p.source, p.note or "–"] for p in paper
            if not _placed(p, cols)]
    if lost:
        lines += ["Published numbers with no column here (this suite does not evaluate their setting):",
                  md_table(["model", "setting", "published (%)", "source", "note"], lost)]
    return lines


def _published_rows(results: Sequence[PaperResult], cols: list[Column], pad: list[str]) -> list[list[str]]:
    """A row per (model, source) of the published numbers that fit a column: "model (source)",
    "paper", the numbers in their columns."""
    groups: dict[tuple[str, str], list[PaperResult]] = {}
    for result in results:
        if _placed(result, cols):
            groups.setdefault((result.model, result.source), []).append(result)
    return [[f"{model} ({source})", "paper", *pad, *[_published(group, c) for c in cols]]
            for (model, source), group in groups.items()]


def _published(results: Sequence[PaperResult], column: Column) -> str:
    """The first of ``results`` that fits ``column``, as a cell, else "–"."""
    return next((p.cell() for p in results if p.fits(*column)), "–")


def shot_notes(records: Sequence[Any]) -> list[str]:
    """A line per model and evaluated shot whose cells come from a model meta-trained at
    another shot (``metahyper.eval.settings.training_shots``)."""
    lines = []
    for model, shots in training_shots(records).items():
        for shot, trained in shots.items():
            if trained != {shot}:
                at = " and ".join(f"{t}-shot" for t in sorted(trained))
                lines.append(f"{shot}-shot cells of {model}: the model was meta-trained on {at} tasks (not "
                             "comparable with per-shot results such as MAML papers', which meta-train one model "
                             "per shot).")
    return lines


def _on(result: PaperResult) -> str:
    """ " on TARGET" for a published number tied to one target, else ""."""
    return f" on {result.target}" if result.target else ""


def _placed(result: PaperResult, cols: list[Column]) -> bool:
    return any(result.fits(*c) for c in cols)


def plot_accuracy_vs_shots(records: Sequence[Any], summaries: Sequence[SeedSummary],
                           path: str | os.PathLike) -> str | None:
    """Accuracy (%) at each evaluated shot, one series per model and target/way, with 95% CI
    error bars (over seeds where a model has several, else over episodes) and each way's chance
    level. The shots sit side by side as categories; a model's points are joined only when there
    are three shots or more (two joined points would read as a curve that was not measured)."""
    cells = headline_cells(records, summaries)
    lines: dict[tuple[Row, str, int], list[tuple[int, Cell]]] = {}
    for (row, (target, way, shot)), cell in cells.items():
        lines.setdefault((row, target, way), []).append((shot, cell))
    several_targets = len({(t, w) for _, t, w in lines}) > 1
    shots = sorted({s for points in lines.values() for s, _ in points})
    fig, ax = plt.subplots(figsize=(8, 5))
    step = min(0.12, 0.8 / len(lines))  # series side by side at each shot, so error bars do not hide each other
    for i, ((row, target, way), points) in enumerate(lines.items()):
        points.sort()
        spots = [shots.index(s) + (i - (len(lines) - 1) / 2) * step for s, _ in points]
        means = [100 * c.mean for _, c in points]
        errors = [100 * c.ci95 for _, c in points]
        label = f"{row[0]} ({target}, {way}-way)" if several_targets else row[0]
        ax.errorbar(spots, means, yerr=errors, marker="o", capsize=4, label=label,
                    linestyle="-" if len(shots) >= 3 else "none")
    for way in sorted({w for _, _, w in lines}):
        ax.axhline(100 / way, color="grey", linestyle=":", linewidth=1)
        ax.annotate(f"chance, {way}-way", (0.01, 100 / way), xycoords=("axes fraction", "data"),
                    va="bottom", fontsize=8, color="grey")
    seeds = max(c.n_seeds for c in cells.values())
    over = f"over {seeds} training seeds" if seeds > 1 else "over episodes (one training seed)"
    targets = ", ".join(dict.fromkeys(t for _, t, _ in lines))
    ax.set_xticks(range(len(shots)), [f"{s}-shot" for s in shots])
    ax.set_xlim(-0.5, len(shots) - 0.5)
    ax.set(xlabel="shots (labelled examples per class)", ylabel="accuracy (%)",
           title=f"Accuracy at each evaluated shot on {targets}\nerror bars: 95% CI {over}")
    ax.grid(axis="y", alpha=0.3)
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    save_figure(fig, path)
    return None


ACCURACY_VS_SHOTS = ("accuracy_vs_shots.png", "Accuracy at each evaluated shot with 95% CIs")
