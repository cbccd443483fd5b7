"""Paper Figure 4 as drawn there: inner-loop movement of named layers over meta-training,
hypernetwork-generated kernels against the same layers' plain weights, and their ratio.

Babu et al. compare, layer by layer, how far the inner loop moves the kernels a hypernetwork
generates (the embeddings are what adapts) with how far it moves a plain network's weights. The
movement is logged during meta-training (``metahyper.meta.metrics.inner_movement``, keys
``generated/<layer>`` and ``param/<layer>.weight``; see ``metahyper.eval.plots``). Runs are
paired as the report pairs their results: a hyper run with its plain run at the same seed
(``metahyper.eval.records.find_pairs``, i.e. ``compare_with`` or the ``hyper_`` prefix).

* ``movement_pairs``: (hyper run, plain run, seed) from the report's comparisons;
* ``movement_ratios``: per pair and layer, the movement of the generated kernel and of the plain
  weight averaged over the last ``MOVEMENT_WINDOW`` diagnostic steps, and hyper / plain;
* ``plot_movement_curves``: movement vs iteration for a few layers, log scale, hyper solid and
  plain dashed on the same axes, one colour per pair.
"""

from __future__ import annotations

import os
from typing import Any, Iterable, Sequence

import matplotlib

matplotlib.use("Agg")  # files only; never needs a display
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from metahyper.eval.plots import MOVEMENT_WINDOW, Record, Runs, save_figure, series  # noqa: E402

MAX_LAYERS = 4  # layers drawn in the curves figure (spread from first to last)
RATIO_NOTE = ("ratio = generated-kernel movement of the hyper run / weight movement of the plain run, per "
              f"layer, each averaged over the last {MOVEMENT_WINDOW} diagnostic steps")


def run_label(record: Any) -> str:
    """The run folder a result record came from (its config's one run), else its model name."""
    runs = record.config.get("run", {}).get("runs", {}) if isinstance(record.config, dict) else {}
    return next(iter(runs), record.model)


def movement_pairs(comparisons: Iterable[Any]) -> list[tuple[str, str, int]]:
    """(hyper run, plain run, seed) for each comparison of two meta-trained models (not
    baselines, whose names hold ``+``), each pair once."""
    pairs = [(run_label(c.hyper), run_label(c.plain), c.hyper.seed) for c in comparisons
             if "+" not in c.hyper.model and "+" not in c.plain.model]
    return list(dict.fromkeys(pairs))


def layer_series(records: Sequence[Record], generated: bool) -> dict[str, tuple[list[int], list[float]]]:
    """layer -> (iterations, movement): generated kernels (``generated/L``) or plain weights
    (``param/L.weight``)."""
    iterations, values = series(records, "movement")
    found: dict[str, tuple[list[int], list[float]]] = {}
    for iteration, value in zip(iterations, values):
        for key, moved in (value.items() if isinstance(value, dict) else ()):
            prefix, _, name = key.partition("/")
            if generated and prefix == "generated":
                layer = name
            elif not generated and prefix == "param" and name.endswith(".weight"):
                layer = name.removesuffix(".weight")
            else:
                continue
            points = found.setdefault(layer, ([], []))
            points[0].append(iteration)
            points[1].append(float(moved))
    return found


def _shared_layers(runs: Runs, hyper: str, plain: str) -> tuple[dict, dict, list[str]]:
    """Both runs' layer series and the layers the hyper run generates and the plain run has."""
    generated = layer_series(runs.get(hyper, ()), generated=True)
    weights = layer_series(runs.get(plain, ()), generated=False)
    return generated, weights, [layer for layer in generated if layer in weights]


def movement_ratios(runs: Runs, pairs: Sequence[tuple[str, str, int]]) -> list[dict[str, Any]]:
    """Per pair with movement metrics in both runs: layer -> {hyper, plain, ratio}."""
    found = []
    for hyper, plain, seed in pairs:
        generated, weights, layers = _shared_layers(runs, hyper, plain)
        if not layers:
            continue
        per_layer = {}
        for layer in layers:
            h = float(np.mean(generated[layer][1][-MOVEMENT_WINDOW:]))
            p = float(np.mean(weights[layer][1][-MOVEMENT_WINDOW:]))
            per_layer[layer] = {"hyper": h, "plain": p, "ratio": h / p if p > 0 else float("inf")}
        found.append({"hyper_run": hyper, "plain_run": plain, "seed": seed, "layers": per_layer})
    return found


def ratio_table(ratios: Sequence[dict[str, Any]]) -> tuple[list[str], list[list[str]]]:
    """Markdown header and rows: one row per pair and layer."""
    header = ["hyper run", "plain run", "layer", "generated movement", "plain movement", "ratio"]
    rows = [[r["hyper_run"], r["plain_run"], layer, f"{v['hyper']:.4g}", f"{v['plain']:.4g}", f"{v['ratio']:.3g}"]
            for r in ratios for layer, v in r["layers"].items()]
    return header, rows


def pick_layers(layers: Sequence[str], most: int = MAX_LAYERS) -> list[str]:
    """Up to ``most`` layers spread evenly from the first to the last."""
    if len(layers) <= most:
        return list(layers)
    return [layers[i] for i in np.linspace(0, len(layers) - 1, most).round().astype(int)]


def plot_movement_curves(runs: Runs, pairs: Sequence[tuple[str, str, int]], path: str | os.PathLike) -> str | None:
    """Movement vs iteration per named layer (one panel each), hyper vs plain, log scale."""
    drawn = [(hyper, plain, *_shared_layers(runs, hyper, plain)) for hyper, plain, _ in pairs]
    drawn = [entry for entry in drawn if entry[4]]
    if not drawn:
        return "no hyper/plain pair of runs both logged inner-loop movement of the same layers"
    layers = pick_layers(drawn[0][4])
    colours = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    fig, axes = plt.subplots(1, len(layers), figsize=(4.2 * len(layers), 4), squeeze=False)
    for ax, layer in zip(axes[0], layers):
        for i, (hyper, plain, generated, weights, _) in enumerate(drawn):
            if layer not in generated:
                continue
            colour = colours[i % len(colours)]
            ax.plot(*generated[layer], color=colour, linestyle="-", label=f"{hyper} (generated)")
            ax.plot(*weights[layer], color=colour, linestyle="--", label=f"{plain} (plain)")
        ax.set_yscale("log")
        ax.set(title=layer, xlabel="meta-training iteration")
        ax.grid(alpha=0.3, which="both")
    axes[0][0].set_ylabel("||W_after - W_before|| (mean over tasks)")
    axes[0][-1].legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    fig.suptitle("Inner-loop movement during meta-training: generated vs plain weights (cf. paper Fig. 4)")
    save_figure(fig, path)
    return None
