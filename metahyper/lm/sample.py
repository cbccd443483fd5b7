"""Sampling text from a character model, and Ha et al.'s Figure 4 weight-change diagnostic.

A HyperLSTM's effective weight matrices change at every step: gate y's are
``W_h^y(t) = diag(d_h^y(t)) W_h^y`` and ``W_x^y(t) = diag(d_x^y(t)) W_x^y``. ``generate``
records, for every generated character, the Frobenius norm of their change from the previous
step over all gates, both kinds and all layers::

    sqrt( sum_{layer, y, kind} || diag(d^y(t) - d^y(t-1)) W^y ||_F^2 )
        = sqrt( sum d_i-change^2 * ||row i of W^y||^2 )

(the row norms are computed once, so no matrix is materialised). A plain or layer-norm LSTM
has static weights: its changes are None. ``plot_weight_changes`` draws the text in lines
with a strip under each line whose bar heights are the changes (the paper's Figure 4).
"""

from __future__ import annotations

import math
import os

import torch
from torch import Tensor

from metahyper.lm.cells import HyperLSTMCell
from metahyper.lm.model import CharLM


def _row_norms(cell: HyperLSTMCell) -> tuple[Tensor, Tensor]:
    """Squared row norms of W_h and W_x of the main LSTM as ``[4, H]`` each."""
    main = cell.main
    return (main.weight_h.pow(2).sum(1).view(4, -1), main.weight_x.pow(2).sum(1).view(4, -1))


def _step(model: CharLM, token: int, state: list) -> tuple[Tensor, list, list[Tensor]]:
    """One character through every layer: (logits ``[vocab]``, new state, per-layer scales)."""
    x = model.embedding(torch.tensor([token], device=model.classifier.weight.device))
    new_state, scales = [], []
    for cell, layer_state in zip(model.cells, state):
        x_part = cell.project_input(x)
        if isinstance(cell, HyperLSTMCell):
            x, layer_state, d = cell.step_with_scales(x_part, layer_state)
            scales.append(d[:2, :, 0])  # d_h, d_x: [2, 4, H]
        else:
            x, layer_state = cell.step(x_part, layer_state)
        new_state.append(layer_state)
    return model.classifier(x)[0], new_state, scales


def _change(before: list[Tensor], after: list[Tensor], rows: list[tuple[Tensor, Tensor]]) -> float:
    total = 0.0
    for old, new, (row_h, row_x) in zip(before, after, rows):
        delta = (new - old).pow(2)
        total += float((delta[0] * row_h).sum() + (delta[1] * row_x).sum())
    return math.sqrt(total)


@torch.no_grad()
def generate(model: CharLM, prime: list[int], length: int, temperature: float = 1.0,
             seed: int = 0) -> tuple[list[int], list[float] | None]:
    """``length`` sampled symbol ids after reading ``prime`` (at least one id), and per generated
    symbol the weight change (module docstring; None for a model without a HyperLSTM)."""
    if not prime or length < 1 or temperature <= 0:
        raise ValueError(f"generate needs a non-empty prime, length >= 1 and temperature > 0, got "
                         f"{len(prime)} ids, {length}, {temperature}")
    was_training = model.training
    model.eval()
    noise = torch.Generator().manual_seed(seed)
    rows = [_row_norms(c) for c in model.cells if isinstance(c, HyperLSTMCell)]
    state = model.initial_state(1)
    for token in prime:
        logits, state, scales = _step(model, token, state)
    out, changes = [], []
    for _ in range(length):
        probs = torch.softmax(logits.double().cpu() / temperature, dim=-1)
        token = int(torch.multinomial(probs, 1, generator=noise))
        out.append(token)
        logits, state, new_scales = _step(model, token, state)
        changes.append(_change(scales, new_scales, rows))
        scales = new_scales
    model.train(was_training)
    return out, (changes if rows else None)


def plot_weight_changes(text: str, changes: list[float], path: str | os.PathLike, width: int = 64) -> None:
    """Figure 4: ``text`` in lines of ``width`` characters, each over a strip of bars whose
    heights are the weight changes of its characters (one value per character)."""
    from metahyper.eval.plots import plt, save_figure

    if len(text) != len(changes):
        raise ValueError(f"{len(text)} characters but {len(changes)} weight changes")
    lines = max(1, -(-len(text) // width))
    top = max(changes) if changes else 1.0
    fig, axes = plt.subplots(lines, 1, figsize=(width * 0.16, lines * 0.9), squeeze=False)
    for k, ax in enumerate(axes[:, 0]):
        chunk, values = text[k * width:(k + 1) * width], changes[k * width:(k + 1) * width]
        ax.bar(range(len(values)), values, width=0.9, color="tab:blue")
        ax.set_xlim(-0.5, width - 0.5)
        ax.set_ylim(0, top * 1.05 or 1.0)
        ax.set_xticks(range(len(chunk)))
        ax.set_xticklabels([c if c.isprintable() and c != " " else "\u00b7" if c == " " else "\u21b5"
                            for c in chunk], fontsize=7, family="monospace")
        ax.tick_params(axis="x", length=0)
        ax.set_yticks([])
        ax.xaxis.set_ticks_position("top")
    fig.suptitle("change of the main LSTM's weight matrices per generated character", fontsize=9)
    save_figure(fig, path)
