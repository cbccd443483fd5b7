"""Paper Figure 4 from meta-training logs: the paper's three layers of a WRN-28-4 pair, absolute
and relative movement, the mean over seeds (numbers worked out by hand in the comments)."""

from __future__ import annotations

import pytest
import torch

from metahyper.data.episodes import TaskBatch
from metahyper.eval import figure4
from metahyper.eval.figure4 import layer_curve, mean_curve, plot_figure4
from metahyper.eval.movement import RunPair, shared_layers
from metahyper.eval.plots import plt
from metahyper.meta import MamlConfig, meta_forward, weight_norms
from metahyper.models import build_model
from metahyper.models.layer_names import layer_label, paper_layers

# WRN-28-4: 3 stages of 4 blocks; the hyper model generates every conv but the first of a stage
CONVS = [f"stages.{s}.{b}.conv{k}" for s in range(3) for b in range(4) for k in (1, 2) if (b, k) != (0, 1)]


def log(generated: bool, scale: float) -> list[dict]:
    """Two diagnostic steps: every layer moves scale * iteration, with ||W|| = 10 * iteration."""
    key = (lambda layer: f"generated/{layer}") if generated else (lambda layer: f"param/{layer}.weight")
    return [{"kind": "train", "iteration": i, "movement": {key(c): scale * i for c in CONVS},
             "weight_norm": {key(c): 10.0 * i for c in CONVS}} for i in (100, 200)]


def test_absolute_and_relative_curves_and_their_mean_over_seeds():
    records = log(True, 0.5)
    assert layer_curve(records, "stages.0.1.conv1", True, relative=False) == {100: 50.0, 200: 100.0}
    assert layer_curve(records, "stages.0.1.conv1", True, relative=True) == {100: 0.05, 200: 0.05}  # 50 / 1000
    assert layer_curve(records, "stages.0.1.conv1", False, relative=False) == {}  # not a plain run's key
    assert mean_curve([{1: 1.0, 2: 3.0}, {2: 5.0, 3: 1.0}]) == ([2], [4.0])  # iterations both seeds logged


def test_the_figure_draws_the_papers_three_layers_of_wrn_28_4(tmp_path, monkeypatch):
    drawn = []
    monkeypatch.setattr(figure4, "save_figure", lambda fig, path: drawn.append(fig))
    runs = {f"hyper_wrn28_4-s{s}": log(True, 0.5 + s) for s in (0, 1)}
    runs |= {f"wrn28_4-s{s}": log(False, 0.1) for s in (0, 1)}
    pairs = [RunPair(f"hyper_wrn28_4-s{s}", f"wrn28_4-s{s}", s, "hyper_wrn28_4", "wrn28_4") for s in (0, 1)]
    labels = {c: layer_label(c, "wrn28_4") for c in CONVS}
    assert plot_figure4(runs, pairs, tmp_path / "f.png", labels) is None
    absolute, relative = drawn[0].axes
    lines = {line.get_label(): line for line in absolute.lines}
    assert list(lines) == [f"{layer}: {model} ({kind})" for layer in (
        "stage 1, block 2, conv 1", "stage 2, block 2, conv 2", "stage 3, block 4, conv 2")
        for model, kind in (("hyper_wrn28_4", "generated"), ("wrn28_4", "plain"))]
    # seeds 0 and 1 move 0.5 i and 1.5 i: mean i at iteration i; plain 0.1 i; relative: / (10 i)
    line = lines["stage 1, block 2, conv 1: hyper_wrn28_4 (generated)"]
    assert list(line.get_xdata()) == [100, 200] and list(line.get_ydata()) == pytest.approx([100.0, 200.0])
    assert list(relative.lines[1].get_ydata()) == pytest.approx([0.01, 0.01])
    assert relative.lines[1].get_linestyle() == "--" and "mean of 2 seeds" in absolute.get_title()
    plt.close(drawn[0])


def test_meta_training_logs_what_the_figure_needs():
    """A MAML step of WRN-16-1 and its hyper model logs, for the three layers Figure 4 picks, the
    generated kernel's and the plain weight's movement and norm (so nothing extra is logged)."""
    torch.manual_seed(0)
    labels = torch.arange(3).repeat(2, 1)
    batch = TaskBatch(torch.randn(2, 3, 3, 8, 8), labels, torch.randn(2, 3, 3, 8, 8), labels.clone())
    runs = {}
    for name, options in (("hyper_wrn", {"variant": 1}), ("wrn", {})):
        model = build_model(name, num_classes=3, depth=16, width=1, **options)
        moved = meta_forward(model, batch, MamlConfig(inner_steps=1, inner_lr=0.1), track_movement=True).movement
        runs[name] = [{"kind": "train", "iteration": 1, "movement": moved, "weight_norm": weight_norms(model)}]
    chosen = paper_layers(shared_layers(runs, "hyper_wrn", "wrn")[2])
    assert [layer_label(layer, "wrn") for layer in chosen] == [
        "stage 1, block 2, conv 1", "stage 2, block 2, conv 2", "stage 3, block 2, conv 2"]
    for layer in chosen:
        for run, generated in (("hyper_wrn", True), ("wrn", False)):
            assert layer_curve(runs[run], layer, generated, relative=False)[1] > 0
            assert layer_curve(runs[run], layer, generated, relative=True)[1] > 0
