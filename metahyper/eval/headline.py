"""The report's headline: accuracy in the paper's layout, and the same numbers as a figure.

Rows are models (each meta-trained run and each baseline, its seeds merged), columns are each
target at way/shot, as in Babu et al.'s Tables 7 and 8 (models x 1-shot / 5-shot). A cell is
the mean over the model's training seeds with the t-CI over seeds when it has several, else the
mean over episodes with the per-episode CI (``headline_cells``). A "chance" row gives 100/way;
the suite's published numbers (``metahyper.paper``) sit beside ours ("· paper 86.3") or
in rows of their own. A field that holds one value in every row (source domain, BN mode, seeds)
is stated once above the table instead of in a column (``constant_fields``).
``plot_accuracy_vs_shots`` draws the cells against the shot with their CIs and the chance level.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any, Sequence

from metahyper.eval.markdown import md_table
from metahyper.paper import PaperResult
from metahyper.eval.plots import plt, save_figure
from metahyper.eval.seeds import SeedSummary, record_key
from metahyper.eval.stats import format_pm

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
                   paper: Sequence[PaperResult] = ()) -> list[str]:
    """The headline section's lines: the fixed fields, how cells are computed, the table, and
    a note for any published number that fits no column. ``methods`` maps a model to its method."""
    cols, cells, seeds = columns(records), headline_cells(records, summaries), seed_sets(records)
    fixed, seed_column = _fixed_line(records, seeds)
    varying = [name for name in ("source", "BN") if name not in constant_fields(records)]
    header = ["model", "method", *varying, *(["seeds"] if seed_column else []), *map(column_name, cols)]
    pad = [""] * (len(header) - len(cols) - 2)
    body = [["chance (100/way)", "", *pad] + [f"{100 / way:.2f}" for _, way, _ in cols]]
    ours = {r for r, _ in cells}
    for row in dict.fromkeys(row for row, _ in cells):
        named = {"source": row[1], "BN": row[2]}
        extra = [named[name] for name in varying] + ([str(len(seeds[row]))] if seed_column else [])
        body.append([row[0], methods.get(row[0], "–"), *extra] + [_ours(cells.get((row, c)), row[0], c, paper)
                                                                  for c in cols])
    models = {row[0] for row in ours}
    for result in [p for p in paper if p.model not in models]:
        found = [result.cell() if result.fits(*c) else "–" for c in cols]
        if any(value != "–" for value in found):
            body.append([f"{result.model} ({result.source})", "paper", *pad, *found])
    lines = [fixed, CELL_NOTES[any(c.n_seeds > 1 for c in cells.values())], md_table(header, body)]
    notes = [f"{p.model} ({p.source}): {p.note}" for p in paper if p.note and _placed(p, cols)]
    lost = [f"{p.model}: {p.cell()} ({p.source}; {p.way}-way {p.shot}-shot{_on(p)})" for p in paper
            if not _placed(p, cols)]
    if notes:
        lines.append("Paper numbers: " + "; ".join(notes) + ".")
    if lost:
        lines.append(f"Paper numbers with no column at their setting here: {'; '.join(lost)}.")
    return lines


def _on(result: PaperResult) -> str:
    """ " on TARGET" for a published number tied to one target, else ""."""
    return f" on {result.target}" if result.target else ""


def _ours(cell: Cell | None, model: str, column: Column, paper: Sequence[PaperResult]) -> str:
    """Our cell, with the paper's number for the same model and setting beside it."""
    text = "–" if cell is None else cell.text()
    published = [p.cell() for p in paper if p.model == model and p.fits(*column)]
    return f"{text} · paper {published[0]}" if published else text


def _placed(result: PaperResult, cols: list[Column]) -> bool:
    return any(result.fits(*c) for c in cols)


def plot_accuracy_vs_shots(records: Sequence[Any], summaries: Sequence[SeedSummary],
                           path: str | os.PathLike) -> str | None:
    """Accuracy (%) against the shot, one line per model and target/way, with 95% CI error bars
    (over seeds where a model has several, else over episodes) and each way's chance level."""
    cells = headline_cells(records, summaries)
    lines: dict[tuple[Row, str, int], list[tuple[int, Cell]]] = {}
    for (row, (target, way, shot)), cell in cells.items():
        lines.setdefault((row, target, way), []).append((shot, cell))
    several_targets = len({(t, w) for _, t, w in lines}) > 1
    fig, ax = plt.subplots(figsize=(8, 5))
    step = min(0.08, 0.5 / len(lines))  # lines side by side at each shot, so error bars do not hide each other
    for i, ((row, target, way), points) in enumerate(lines.items()):
        points.sort()
        shots = [s + (i - (len(lines) - 1) / 2) * step for s, _ in points]
        means = [100 * c.mean for _, c in points]
        errors = [100 * c.ci95 for _, c in points]
        label = f"{row[0]} ({target}, {way}-way)" if several_targets else row[0]
        ax.errorbar(shots, means, yerr=errors, marker="o", capsize=4, label=label)
    for way in sorted({w for _, _, w in lines}):
        ax.axhline(100 / way, color="grey", linestyle=":", linewidth=1)
        ax.annotate(f"chance, {way}-way", (0.01, 100 / way), xycoords=("axes fraction", "data"),
                    va="bottom", fontsize=8, color="grey")
    shots = sorted({s for points in lines.values() for s, _ in points})
    seeds = max(c.n_seeds for c in cells.values())
    over = f"over {seeds} training seeds" if seeds > 1 else "over episodes (one training seed)"
    targets = ", ".join(dict.fromkeys(t for _, t, _ in lines))
    ax.set_xticks(shots)
    ax.set(xlabel="shots (labelled examples per class)", ylabel="accuracy (%)",
           title=f"Accuracy vs shots on {targets}\nerror bars: 95% CI {over}")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    save_figure(fig, path)
    return None


ACCURACY_VS_SHOTS = ("accuracy_vs_shots.png", "Accuracy vs shots with 95% CIs")
