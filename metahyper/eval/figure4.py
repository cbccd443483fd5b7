"""Paper Figure 4: how far the inner loop moves three layers' weights during meta-training,
hypernetwork-generated against plain.

Babu et al. draw, for HyperWRN-28-4 against WRN-28-4, the absolute movement ||W_after -
W_before|| of a layer's weights over the inner loop, averaged over the meta-batch, for the first
conv of block 2 of stage 1, the second conv of block 2 of stage 2 and the second conv of block 4
of stage 3 (``metahyper.models.layer_names.paper_layers``, which picks the analogous layers of
other backbones). Meta-training logs that movement on its diagnostic steps for every generated
kernel (``movement`` key ``generated/<layer>``) and every adapted plain weight
(``param/<layer>.weight``), with each weight's norm where the inner loop starts (``weight_norm``;
``metahyper.meta.metrics``), so nothing extra is logged for this figure.

``plot_figure4`` draws one row per hyper/plain model pair: the absolute movement (the paper's
panel) and the movement relative to ||W_before|| (so layers of different size compare), a colour
per layer, the generated kernel solid and the plain weight dashed, each the mean over the pair's
seeds at the iterations every seed logged.
"""

from __future__ import annotations

import os
from typing import Any, Mapping, Sequence

import numpy as np

from metahyper.eval.movement import RunPair, shared_layers
from metahyper.eval.plots import Record, Runs, plt, save_figure, series
from metahyper.models.layer_names import paper_layers

TITLE = "Inner-loop movement of the paper's three layers over meta-training, generated vs plain (paper Figure 4)"


def layer_curve(records: Sequence[Record], layer: str, generated: bool, relative: bool) -> dict[int, float]:
    """iteration -> the layer's logged movement (divided by that step's ``weight_norm`` of the
    layer when ``relative``; steps without a norm are left out then)."""
    key = f"generated/{layer}" if generated else f"param/{layer}.weight"
    norms = dict(zip(*series(records, "weight_norm")))
    curve = {}
    for iteration, moved in zip(*series(records, "movement")):
        norm = norms.get(iteration, {}).get(key) if isinstance(norms.get(iteration), dict) else None
        if isinstance(moved, dict) and key in moved and (not relative or norm):
            curve[iteration] = moved[key] / norm if relative else moved[key]
    return curve


def mean_curve(curves: Sequence[dict[int, float]]) -> tuple[list[int], list[float]]:
    """The mean of ``curves`` (one per seed) at the iterations every one of them has."""
    common = sorted(set.intersection(*(set(c) for c in curves))) if curves else []
    return common, [float(np.mean([c[i] for c in curves])) for i in common]


def model_pairs(pairs: Sequence[RunPair]) -> dict[tuple[str, str], list[RunPair]]:
    """The run pairs (seeds) of each hyper/plain model pair."""
    found: dict[tuple[str, str], list[RunPair]] = {}
    for pair in pairs:
        found.setdefault((pair.hyper, pair.plain), []).append(pair)
    return found


def _panel(ax: Any, runs: Runs, members: list[RunPair], layers: list[str], relative: bool,
           labels: Mapping[str, str]) -> bool:
    """Draw one panel; whether anything was drawn."""
    colours = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    drawn = False
    for i, layer in enumerate(layers):
        for generated, style, model in ((True, "-", members[0].hyper), (False, "--", members[0].plain)):
            curves = [layer_curve(runs.get(m.hyper_run if generated else m.plain_run, ()), layer, generated, relative)
                      for m in members]
            iterations, values = mean_curve([c for c in curves if c])
            if iterations:
                kind = "generated" if generated else "plain"
                ax.plot(iterations, values, linestyle=style, color=colours[i % len(colours)], marker=".",
                        label=f"{labels.get(layer, layer)}: {model} ({kind})")
                drawn = True
    return drawn


def plot_figure4(runs: Runs, pairs: Sequence[RunPair], path: str | os.PathLike,
                 labels: Mapping[str, str] | None = None) -> str | None:
    """The figure (module docstring); ``labels``: layer -> its name in the paper's words."""
    rows = []
    for (hyper, plain), members in model_pairs(pairs).items():
        layers = paper_layers(shared_layers(runs, members[0].hyper_run, members[0].plain_run)[2])
        if layers:
            rows.append((hyper, plain, members, layers))
    if not rows:
        return "no hyper/plain pair of runs both logged inner-loop movement of the same layers"
    fig, axes = plt.subplots(len(rows), 2, figsize=(17, 4.5 * len(rows)), squeeze=False)
    for (hyper, plain, members, layers), row in zip(rows, axes):
        seeds = f"mean of {len(members)} seeds" if len(members) > 1 else f"seed {members[0].seed}"
        for ax, relative in zip(row, (False, True)):
            if not _panel(ax, runs, members, layers, relative, labels or {}):
                ax.text(0.5, 0.5, "these runs logged no ||W|| (weight_norm)", ha="center", transform=ax.transAxes)
                continue
            ax.set_yscale("log")
            ax.grid(alpha=0.3, which="both")
        row[1].legend(*row[0].get_legend_handles_labels(), fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0))
        row[0].set(title=f"{hyper} vs {plain} ({seeds}): absolute movement", xlabel="meta-training iteration",
                   ylabel="||W_after - W_before||, mean over the meta-batch")
        row[1].set(title=f"{hyper} vs {plain} ({seeds}): relative to the weight", xlabel="meta-training iteration",
                   ylabel="||W_after - W_before|| / ||W_before||")
    fig.suptitle("Inner-loop movement of three layers (cf. Babu et al. Fig. 4): generated solid, plain dashed")
    save_figure(fig, path)
    return None
