"""PNG figures of meta-training metrics, one per paper figure, drawn with matplotlib's Agg backend.

They read the metrics records meta-training logs (``metahyper.meta.train`` through
``MetricsLog``; one JSON object per line), of which these keys are used::

    {"kind": "train", "iteration": 200, "loss": 1.23, "accuracy": 0.45, ...,
     "movement": {"param/layer1.0.conv1.weight": 0.01, "generated/layer1.0.conv2": 0.2, ...},
     "weight_norm": {"param/layer1.0.conv1.weight": 3.1, "generated/layer1.0.conv2": 2.4, ...},
     "norm_grad_ratio": {"hypernet": 130.0, "classifier": 12.0}}     # all on diagnostic steps
    {"kind": "val", "iteration": 200, "accuracy": 0.51, "ci95": 0.03}  # validation steps

* ``plot_validation``: ``accuracy`` of ``"val"`` records vs iteration (Figure 5), one line per
  model: the mean over its seeds with a band of the 95% t-CI over seeds when it has several runs,
  else its one run with a band of the logged per-episode CI; the split, way and shot are in the
  title (``ValSetting``, from the result records).
* ``plot_norm_ratio``: ``||P|| / ||grad P||`` per parameter role vs iteration (Figure 2).
* the movement figures (Figure 4) are ``metahyper.eval.movement``'s.

Each ``plot_*`` function takes ``runs`` (run label -> records) and a PNG path, writes the PNG
atomically and returns ``None``, or writes nothing and returns a one-line reason when no run
carries the metric it needs (a missing key is normal: old runs, diagnostics switched off).
If a run logged an iteration twice, the later record wins.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from typing import Any, Mapping, Sequence

import matplotlib

matplotlib.use("Agg")  # files only; never needs a display
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from metahyper.atomic import atomic_write  # noqa: E402
from metahyper.eval.stats import mean_ci  # noqa: E402

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


@dataclass(frozen=True)
class ValSetting:
    """What a run's validation curve measures (from its result record's config): the model it
    belongs to (``label``: its seeds share one), the source split, way, shot, queries, episodes."""

    label: str
    split: str | None = None
    way: int | None = None
    shot: int | None = None
    query: int | None = None
    episodes: int | None = None

    def describe(self) -> str:
        """``"val split, 5-way 1-shot, 15 queries, 100 episodes"`` (what is known)."""
        parts = [f"{self.split} split"] if self.split else []
        parts += [f"{self.way}-way {self.shot}-shot"] if self.way else []
        parts += [f"{self.query} queries per class"] if self.query else []
        parts += [f"{self.episodes} episodes"] if self.episodes else []
        return ", ".join(parts)


def _val_curves(runs: Runs, settings: Mapping[str, ValSetting]) -> dict[str, tuple[ValSetting, list]]:
    """model label -> (its setting, [(iterations, accuracies, per-episode CIs) per run])."""
    grouped: dict[str, tuple[ValSetting, list]] = {}
    for run, records in runs.items():
        iterations, values = series(records, "accuracy", kind="val")
        if not iterations:
            continue
        cis = dict(zip(*series(records, "ci95", kind="val")))
        setting = settings.get(run, ValSetting(run))
        curve = (iterations, values, [cis.get(i) for i in iterations])
        grouped.setdefault(setting.label, (setting, []))[1].append(curve)
    return grouped


def _band(curves: list) -> tuple[list[int], np.ndarray, np.ndarray | None, str]:
    """(iterations, mean %, CI half width % or None, what the band is) of one model's runs:
    over seeds at the iterations every run logged, else the one run's per-episode CI."""
    if len(curves) == 1:
        iterations, values, cis = curves[0]
        ci = None if any(c is None for c in cis) else 100 * np.asarray(cis, dtype=float)
        return iterations, 100 * np.asarray(values, dtype=float), ci, "episodes"
    common = sorted(set.intersection(*(set(c[0]) for c in curves)))
    table = np.array([[dict(zip(c[0], c[1]))[i] for i in common] for c in curves], dtype=float)
    intervals = [mean_ci(column) for column in table.T]
    return common, 100 * np.array([m for m, _ in intervals]), 100 * np.array([h for _, h in intervals]), \
        f"{len(curves)} seeds"


def plot_validation(runs: Runs, path: str | os.PathLike,
                    settings: Mapping[str, ValSetting] | None = None) -> str | None:
    """Validation accuracy (%) vs outer iteration with 95% CI bands, one line per model
    (``settings``: run -> its ``ValSetting``; a run without one is its own model)."""
    grouped = _val_curves(runs, settings or {})
    if not grouped:
        return ("no run logged a validation accuracy; set data.val_split (a source split to validate on) and "
                "meta_train.validate_every to at most meta_train.iterations to get a validation curve")
    described = {setting.describe() for setting, _ in grouped.values()}
    shared = described.pop() if len(described) == 1 else ""
    fig, ax = plt.subplots(figsize=(8, 4.5 + 0.2 * len(grouped)))
    for label, (setting, curves) in grouped.items():
        iterations, mean, ci, over = _band(curves)
        name = f"{label} (band: CI over {over})" if ci is not None else label
        if not shared and setting.describe():
            name += f"; {setting.describe()}"
        (line,) = ax.plot(iterations, mean, marker="o", markersize=3, label=name)
        if ci is not None:
            low, high = np.clip(mean - ci, 0, 100), np.clip(mean + ci, 0, 100)  # accuracies stay in [0, 100]
            ax.fill_between(iterations, low, high, color=line.get_color(), alpha=0.2, linewidth=0)
    title = "Validation accuracy during meta-training (cf. paper Fig. 5), bands: 95% CI"
    ax.set(xlabel="meta-training iteration", ylabel="validation accuracy (%)",
           title=f"{title}\n{shared}" if shared else title)
    ax.title.set_fontsize(10)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="upper center", bbox_to_anchor=(0.5, -0.14))  # below: labels can be long
    save_figure(fig, path)
    return None


def plot_norm_ratio(runs: Runs, path: str | os.PathLike, names: Mapping[str, str] | None = None) -> str | None:
    """||P|| / ||grad P|| per role vs iteration (log scale): colour = role, line style = run
    (``names``: run -> its name in the legend, e.g. "conv4, seed 0")."""
    lines = {}
    for run, records in runs.items():
        label = (names or {}).get(run, run)
        iterations, values = series(records, "norm_grad_ratio")
        for role in dict.fromkeys(role for value in values if isinstance(value, dict) for role in value):
            points = [(i, v[role]) for i, v in zip(iterations, values) if isinstance(v, dict) and role in v]
            lines[label, role] = points
    if not lines:
        return ("no run logged ||P|| / ||grad P||; set meta_train.diagnostics_every to at most "
                "meta_train.iterations to get this figure")
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
