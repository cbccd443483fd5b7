"""PNG figures of meta-training metrics, one per paper figure, drawn with matplotlib's Agg backend.

They read the metrics records meta-training logs (``metahyper.meta.train`` through
``MetricsLog``; one JSON object per line), of which these keys are used::

    {"kind": "train", "iteration": 200, "loss": 1.23, "accuracy": 0.45, ...,
     "movement": {"param/layer1.0.conv1.weight": 0.01, "generated/layer1.0.conv2": 0.2, ...},
     "norm_grad_ratio": {"hypernet": 130.0, "classifier": 12.0}}     # both on diagnostic steps
    {"kind": "val", "iteration": 200, "accuracy": 0.51, ...}          # validation steps

* ``plot_validation``: ``accuracy`` of ``"val"`` records vs iteration, one line per run (Figure 5).
* ``plot_movement``: inner-loop movement per layer, one bar per run (Figure 4). A layer's value is
  ``generated/<layer>`` (a hypernetwork-generated kernel) or ``param/<layer>.weight`` (a plain
  weight), so a backbone and its hyper variant line up; other adapted tensors (embeddings,
  biases) are left out. Bars average the last ``MOVEMENT_WINDOW`` diagnostic steps.
* ``plot_norm_ratio``: ``||P|| / ||grad P||`` per parameter role vs iteration (Figure 2).

Each ``plot_*`` function takes ``runs`` (run label -> records) and a PNG path, writes the PNG
atomically and returns ``None``, or writes nothing and returns a one-line reason when no run
carries the metric it needs (a missing key is normal: old runs, diagnostics switched off).
If a run logged an iteration twice, the later record wins.
"""

from __future__ import annotations

import math
import os
from typing import Any, Mapping, Sequence

import matplotlib

matplotlib.use("Agg")  # files only; never needs a display
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from metahyper.atomic import atomic_write  # noqa: E402

Record = Mapping[str, Any]
Runs = Mapping[str, Sequence[Record]]
MOVEMENT_WINDOW = 10  # movement bars average the last this-many logged iterations of a run
_LINESTYLES = ("-", "--", ":", "-.")


def series(records: Sequence[Record], key: str, kind: str | None = None) -> tuple[list[int], list[Any]]:
    """(iterations, values) of ``key`` in iteration order, from records of ``kind`` (any if None).

    Records without an int ``iteration`` or without ``key`` are ignored, as are non-finite
    scalar values (a diverged step has nothing to plot); on a repeated iteration the later wins.
    """
    by_iteration: dict[int, Any] = {}
    for record in records:
        iteration, value = record.get("iteration"), record.get(key)
        if not isinstance(iteration, int) or value is None or (kind and record.get("kind") != kind):
            continue
        if isinstance(value, float) and not math.isfinite(value):
            continue
        by_iteration[iteration] = value
    iterations = sorted(by_iteration)
    return iterations, [by_iteration[i] for i in iterations]


def save_figure(fig: Any, path: str | os.PathLike) -> None:
    """Write the figure as PNG atomically and free it."""
    try:
        fig.tight_layout()
        with atomic_write(path, "wb") as handle:
            fig.savefig(handle, format="png", dpi=120)
    finally:
        plt.close(fig)


def plot_validation(runs: Runs, path: str | os.PathLike) -> str | None:
    """Validation accuracy (%) vs outer iteration, one line per run."""
    curves = {label: series(records, "accuracy", kind="val") for label, records in runs.items()}
    curves = {label: curve for label, curve in curves.items() if curve[0]}
    if not curves:
        return "no 'val' metrics record has 'accuracy'"
    fig, ax = plt.subplots(figsize=(7, 4.5))
    for label, (iterations, values) in curves.items():
        ax.plot(iterations, 100 * np.asarray(values, dtype=float), marker="o", markersize=3, label=label)
    ax.set(xlabel="meta-training iteration", ylabel="validation accuracy (%)",
           title="Validation accuracy during meta-training (cf. paper Fig. 5)")
    ax.grid(alpha=0.3)
    ax.legend()
    save_figure(fig, path)
    return None


def layer_movement(movement: Mapping[str, float]) -> dict[str, float]:
    """Movement keyed by layer: ``generated/L`` and ``param/L.weight`` -> ``L``; others dropped."""
    layers = {}
    for key, value in movement.items():
        prefix, _, name = key.partition("/")
        if prefix == "generated":
            layers[name.removesuffix(".weight")] = value
        elif prefix == "param" and name.endswith(".weight"):
            layers.setdefault(name.removesuffix(".weight"), value)
    return layers


def _mean_movement(records: Sequence[Record]) -> dict[str, float]:
    """Per-layer movement averaged over the last ``MOVEMENT_WINDOW`` logged iterations."""
    _, values = series(records, "movement")
    recent = [layer_movement(value) for value in values if isinstance(value, dict)][-MOVEMENT_WINDOW:]
    layers = list(dict.fromkeys(layer for value in recent for layer in value))
    return {
        layer: float(np.mean([value[layer] for value in recent if layer in value])) for layer in layers
    }


def plot_movement(runs: Runs, path: str | os.PathLike) -> str | None:
    """Grouped bars: inner-loop movement of each layer's weights, one bar per run."""
    movement = {label: _mean_movement(records) for label, records in runs.items()}
    movement = {label: layers for label, layers in movement.items() if layers}
    if not movement:
        return "no metrics record has 'movement' with generated/ or param/*.weight entries"
    layers = list(dict.fromkeys(layer for per_run in movement.values() for layer in per_run))
    width = 0.8 / len(movement)
    positions = np.arange(len(layers))
    fig, ax = plt.subplots(figsize=(min(20, max(7, 0.45 * len(layers) * len(movement))), 5))
    for i, (label, per_run) in enumerate(movement.items()):
        heights = [per_run.get(layer, np.nan) for layer in layers]
        ax.bar(positions + (i - (len(movement) - 1) / 2) * width, heights, width, label=label)
    values = [v for per_run in movement.values() for v in per_run.values() if v > 0]
    if values and max(values) / min(values) > 100:
        ax.set_yscale("log")
    ax.set_xticks(positions, layers, rotation=60, ha="right", fontsize=8)
    ax.set(ylabel="||W_after - W_before|| (mean over tasks)",
           title=f"Inner-loop weight movement per layer, last {MOVEMENT_WINDOW} logs (cf. paper Fig. 4)")
    ax.grid(axis="y", alpha=0.3)
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0))
    save_figure(fig, path)
    return None


def plot_norm_ratio(runs: Runs, path: str | os.PathLike) -> str | None:
    """||P|| / ||grad P|| per role vs iteration (log scale): colour = role, line style = run."""
    lines = {}
    for label, records in runs.items():
        iterations, values = series(records, "norm_grad_ratio")
        for role in dict.fromkeys(role for value in values if isinstance(value, dict) for role in value):
            points = [(i, v[role]) for i, v in zip(iterations, values) if isinstance(v, dict) and role in v]
            lines[label, role] = points
    if not lines:
        return "no metrics record has 'norm_grad_ratio'"
    roles = list(dict.fromkeys(role for _, role in lines))
    labels = list(dict.fromkeys(label for label, _ in lines))
    colours = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    fig, ax = plt.subplots(figsize=(9, 4.5))
    for (label, role), points in lines.items():
        x, y = zip(*points)
        ax.plot(x, y, color=colours[roles.index(role) % len(colours)],
                linestyle=_LINESTYLES[labels.index(label) % len(_LINESTYLES)], label=f"{label}: {role}")
    ax.set_yscale("log")
    ax.set(xlabel="meta-training iteration", ylabel="||P|| / ||grad P||",
           title="Parameter norm over gradient norm per role (cf. paper Fig. 2)")
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    save_figure(fig, path)
    return None


FIGURES = (
    ("val_curves.png", "Validation accuracy (paper Figure 5)", plot_validation),
    ("movement.png", "Inner-loop weight movement per layer (paper Figure 4)", plot_movement),
    ("norm_ratio.png", "||P|| / ||grad P|| per role (paper Figure 2)", plot_norm_ratio),
)
