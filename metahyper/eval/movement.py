"""Paper Figure 4: inner-loop movement of each layer's weights, hypernetwork-generated kernels
against the same layers' plain weights.

Babu et al. compare, layer by layer, how far the inner loop moves the kernels a hypernetwork
generates (the embeddings are what adapts) with how far it moves a plain network's weights. The
movement is logged during meta-training (``metahyper.meta.metrics.inner_movement``, keys
``generated/<layer>`` and ``param/<layer>.weight``; see ``metahyper.eval.plots``). Runs are
paired as the report pairs their results: a hyper run with its plain run at the same seed
(``metahyper.eval.records.find_pairs``, i.e. ``compare_with`` or the ``hyper_`` prefix).

* ``plot_movement`` (``movement.png``): per layer and run, the relative movement
  ||W_after - W_before|| / ||W_before|| (the ``weight_norm`` logged beside the movement), so
  layers of any size compare; a layer the run has but its inner loop does not adapt is marked
  "not adapted" (x), an adapted layer that did not move "zero" (o). Runs that logged no norms
  (older runs) are drawn in absolute movement, as the title then says;
* ``movement_pairs``: (hyper run, plain run, seed, hyper model, plain model) from the report's
  comparisons;
* ``movement_ratios``: per pair and layer, the movement of the generated kernel and of the plain
  weight averaged over the last ``MOVEMENT_WINDOW`` diagnostic steps, and hyper / plain;
* the paper's own figure, the movement of three layers over meta-training, is
  ``metahyper.eval.figure4``.

Layers are named in the paper's words (``metahyper.models.layer_names``: "stage 1, block 2,
conv 1"), runs by their model and seed.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any, Iterable, Mapping, NamedTuple, Sequence

import matplotlib

matplotlib.use("Agg")  # files only; never needs a display
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from metahyper.eval.plots import MOVEMENT_WINDOW, Record, Runs, save_figure, series  # noqa: E402
from metahyper.eval.stats import mean_ci  # noqa: E402
from metahyper.models.layer_names import layer_label  # noqa: E402

RATIO_NOTE = ("ratio = generated-kernel movement of the hyper run / weight movement of the plain run, per "
              f"layer, each averaged over the last {MOVEMENT_WINDOW} diagnostic steps")


def run_label(record: Any) -> str:
    """The run folder a result record came from (its config's one run), else its model name."""
    runs = record.config.get("run", {}).get("runs", {}) if isinstance(record.config, dict) else {}
    return next(iter(runs), record.model)


class RunPair(NamedTuple):
    """A hyper run and its plain run at one seed (their folders), and the two models they are."""

    hyper_run: str
    plain_run: str
    seed: int
    hyper: str
    plain: str


def movement_pairs(comparisons: Iterable[Any], groups: Mapping[str, str] | None = None) -> list[RunPair]:
    """The ``RunPair`` of each comparison of two meta-trained models (not baselines, whose
    names hold ``+``), each pair once; ``groups`` (run -> the model it is a run of, e.g. with
    the shot of a per-shot model: ``metahyper.eval.settings.RunInfo``) names the models."""
    groups = groups or {}
    pairs = []
    for c in comparisons:
        if "+" not in c.hyper.model and "+" not in c.plain.model:
            hyper, plain = run_label(c.hyper), run_label(c.plain)
            pairs.append(RunPair(hyper, plain, c.hyper.seed, groups.get(hyper, c.hyper.model),
                                 groups.get(plain, c.plain.model)))
    return list(dict.fromkeys(pairs))


def layer_key(key: str) -> tuple[bool, str] | None:
    """(generated?, layer) of a movement or norm key: ``generated/L`` -> (True, L),
    ``param/L.weight`` -> (False, L); other tensors (embeddings, biases) -> None."""
    prefix, _, name = key.partition("/")
    if prefix == "generated":
        return True, name.removesuffix(".weight")
    if prefix == "param" and name.endswith(".weight"):
        return False, name.removesuffix(".weight")
    return None


def layer_movement(movement: Mapping[str, float]) -> dict[str, float]:
    """Values keyed by layer (``layer_key``); a generated kernel wins over a plain weight."""
    layers: dict[str, float] = {}
    for key, value in movement.items():
        found = layer_key(key)
        if found is not None and (found[0] or found[1] not in layers):
            layers[found[1]] = value
    return layers


def layer_series(records: Sequence[Record], generated: bool) -> dict[str, tuple[list[int], list[float]]]:
    """layer -> (iterations, movement): generated kernels (``generated/L``) or plain weights
    (``param/L.weight``)."""
    iterations, values = series(records, "movement")
    found: dict[str, tuple[list[int], list[float]]] = {}
    for iteration, value in zip(iterations, values):
        for key, moved in (value.items() if isinstance(value, dict) else ()):
            kind = layer_key(key)
            if kind is None or kind[0] != generated:
                continue
            points = found.setdefault(kind[1], ([], []))
            points[0].append(iteration)
            points[1].append(float(moved))
    return found


def layer_labels(runs: Runs, architectures: Mapping[str, str]) -> dict[str, str]:
    """Every layer the runs logged -> its name in the paper's words (``layer_label`` with the
    run's registered model: ``architectures``, run -> model name)."""
    labels: dict[str, str] = {}
    for run, records in runs.items():
        for key in ("movement", "weight_norm"):
            for logged in series(records, key)[1][-1:]:  # every diagnostic step logs the same layers
                for found in filter(None, map(layer_key, logged if isinstance(logged, dict) else ())):
                    labels.setdefault(found[1], layer_label(found[1], architectures.get(run)))
    return labels


@dataclass(frozen=True)
class RunMovement:
    """One run's inner-loop movement per layer, averaged over its last ``MOVEMENT_WINDOW``
    diagnostic steps: ``moved`` (layer -> mean; relative ||dW|| / ||W|| when ``relative``),
    ``fixed`` (layers with a logged norm that the inner loop does not adapt), and ``layers``
    (every layer in the model's order)."""

    moved: dict[str, float]
    fixed: list[str]
    layers: list[str]
    relative: bool


def logs_norms(records: Sequence[Record]) -> bool:
    """Whether the run logged ``weight_norm`` on its diagnostic steps (runs from before did not)."""
    return bool(series(records, "weight_norm")[0])


def run_movement(records: Sequence[Record], relative: bool) -> RunMovement | None:
    """The run's ``RunMovement`` (None without movement of a layer weight); ``relative``
    divides each step's movement by that step's ``weight_norm`` (needs ``logs_norms``)."""
    iterations, values = series(records, "movement")
    norms = dict(zip(*series(records, "weight_norm")))
    recent = [(i, layer_movement(v)) for i, v in zip(iterations, values) if isinstance(v, dict)]
    recent = [(i, moved) for i, moved in recent if moved and (not relative or isinstance(norms.get(i), dict))]
    recent = recent[-MOVEMENT_WINDOW:]
    if not recent:
        return None
    per_layer: dict[str, list[float]] = {}
    for iteration, moved in recent:
        scale = layer_movement(norms[iteration]) if relative else {}
        for layer, value in moved.items():
            if not relative or scale.get(layer, 0) > 0:
                per_layer.setdefault(layer, []).append(value / scale[layer] if relative else value)
    adapted = {layer for _, moved in recent for layer in moved}
    known = list(layer_movement(norms[recent[-1][0]])) if relative else []
    return RunMovement({layer: float(np.mean(v)) for layer, v in per_layer.items()},
                       [layer for layer in known if layer not in adapted],
                       list(dict.fromkeys(known + list(per_layer))), relative)


@dataclass(frozen=True)
class ModelMovement:
    """A model's per-layer movement over its runs (its seeds): ``moved`` the mean, ``ci95`` the
    95% t-CI over the runs (layers moved in at least two), ``fixed`` its not-adapted layers."""

    moved: dict[str, float]
    ci95: dict[str, float]
    fixed: list[str]
    layers: list[str]
    runs: int


def model_movement(runs: Runs, relative: bool, groups: Mapping[str, str]) -> dict[str, ModelMovement]:
    """``run_movement`` of every run, merged per model (``groups``: run -> model; a run without
    an entry is its own model)."""
    merged: dict[str, list[RunMovement]] = {}
    for run, records in runs.items():
        found = run_movement(records, relative)
        if found is not None:
            merged.setdefault(groups.get(run, run), []).append(found)
    models = {}
    for label, found in merged.items():
        layers = list(dict.fromkeys(layer for m in found for layer in m.layers))
        values = {layer: [m.moved[layer] for m in found if layer in m.moved] for layer in layers}
        moved = {layer: float(np.mean(v)) for layer, v in values.items() if v}
        ci95 = {layer: mean_ci(v)[1] for layer, v in values.items() if len(v) > 1}
        fixed = [layer for layer in layers if layer not in moved and any(layer in m.fixed for m in found)]
        models[label] = ModelMovement(moved, ci95, fixed, layers, len(found))
    return models


def plot_movement(runs: Runs, path: str | os.PathLike, groups: Mapping[str, str] | None = None,
                  labels: Mapping[str, str] | None = None) -> str | None:
    """Grouped bars: each layer's inner-loop movement relative to its weight, one bar per model
    (the mean over its seeds, with the 95% CI over them as error bars); x marks a layer the model
    does not adapt, o an adapted layer that did not move. ``labels``: layer -> its name."""
    relative = all(logs_norms(records) for records in runs.values() if series(records, "movement")[0])
    found = model_movement(runs, relative, groups or {})
    if not found:
        return ("no run logged the inner-loop movement of its weights; set meta_train.diagnostics_every to at "
                "most meta_train.iterations to get this figure")
    layers = list(dict.fromkeys(layer for m in found.values() for layer in m.layers))
    width, positions = 0.8 / len(found), np.arange(len(layers))
    colours = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    fig, ax = plt.subplots(figsize=(min(22, max(9, 0.35 * len(layers) * len(found) + 3)), 5.5))
    marks = set()
    for i, (label, m) in enumerate(found.items()):
        x, colour = positions + (i - (len(found) - 1) / 2) * width, colours[i % len(colours)]
        errors = [m.ci95.get(layer, 0.0) for layer in layers] if m.runs > 1 else None
        name = f"{label} (mean of {m.runs} seeds, 95% CI)" if m.runs > 1 else label
        ax.bar(x, [m.moved.get(layer, np.nan) for layer in layers], width, yerr=errors, capsize=2, color=colour,
               label=name)
        marks |= _mark(ax, [x[layers.index(layer)] for layer in m.fixed], "x", colour, "fixed")
        marks |= _mark(ax, [x[layers.index(k)] for k, v in m.moved.items() if v == 0], "o", colour, "zero")
    values = [v for m in found.values() for v in m.moved.values() if v > 0]
    if values and max(values) / min(values) > 100:
        ax.set_yscale("log")
    handles, _ = ax.get_legend_handles_labels()
    handles += [plt.Line2D([], [], marker=mk, color="grey", markerfacecolor="none" if mk == "o" else "grey",
                           linestyle="", label=text)
                for kind, mk, text in (("fixed", "x", "not adapted by the inner loop"),
                                       ("zero", "o", "adapted, zero movement")) if kind in marks]
    ax.set_xticks(positions, [(labels or {}).get(layer, layer) for layer in layers], rotation=60, ha="right",
                  fontsize=8)
    what = "||W_after - W_before|| / ||W_before||" if relative else "||W_after - W_before|| (absolute)"
    note = "movement relative to the weight" if relative else "absolute movement: these runs logged no ||W||"
    ax.set(ylabel=f"{what}\nmean over tasks", title=f"Inner-loop movement of every layer (cf. paper Fig. 4): {note},\n"
           f"mean of the last {MOVEMENT_WINDOW} diagnostic steps")
    ax.grid(axis="y", alpha=0.3)
    ax.legend(handles=handles, fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    save_figure(fig, path)
    return None


def _mark(ax: Any, spots: list[float], marker: str, colour: str, kind: str) -> set[str]:
    """Markers on the x axis at ``spots`` (x in data, y just above the axis); {kind} if any."""
    ax.scatter(spots, [0.03] * len(spots), marker=marker, color=colour, facecolors="none" if marker == "o" else colour,
               transform=ax.get_xaxis_transform(), zorder=3, clip_on=False)
    return {kind} if spots else set()


def shared_layers(runs: Runs, hyper: str, plain: str) -> tuple[dict, dict, list[str]]:
    """Both runs' layer series and the layers the hyper run generates and the plain run has."""
    generated = layer_series(runs.get(hyper, ()), generated=True)
    weights = layer_series(runs.get(plain, ()), generated=False)
    return generated, weights, [layer for layer in generated if layer in weights]


def movement_ratios(runs: Runs, pairs: Sequence[RunPair]) -> list[dict[str, Any]]:
    """Per pair with movement metrics in both runs: layer -> {hyper, plain, ratio}."""
    found = []
    for pair in pairs:
        generated, weights, layers = shared_layers(runs, pair.hyper_run, pair.plain_run)
        if not layers:
            continue
        per_layer = {}
        for layer in layers:
            h = float(np.mean(generated[layer][1][-MOVEMENT_WINDOW:]))
            p = float(np.mean(weights[layer][1][-MOVEMENT_WINDOW:]))
            per_layer[layer] = {"hyper": h, "plain": p, "ratio": h / p if p > 0 else float("inf")}
        found.append({"hyper_run": pair.hyper_run, "plain_run": pair.plain_run, "seed": pair.seed,
                      "hyper_model": pair.hyper, "plain_model": pair.plain, "layers": per_layer})
    return found


def ratio_table(ratios: Sequence[dict[str, Any]], labels: Mapping[str, str]) -> tuple[list[str], list[list[str]]]:
    """Markdown header and rows: one row per pair, seed and layer (``labels``: layer -> its name)."""
    header = ["hyper", "plain", "seed", "layer", "generated movement", "plain movement", "ratio"]
    rows = [[r["hyper_model"], r["plain_model"], str(r["seed"]), labels.get(layer, layer), f"{v['hyper']:.4g}",
             f"{v['plain']:.4g}", f"{v['ratio']:.3g}"] for r in ratios for layer, v in r["layers"].items()]
    return header, rows
