"""Character-level language models: embedding -> stacked recurrent cells -> linear softmax head.

``CharLM(vocab_size, cell="lstm" | "ln_lstm" | "hyper_lstm", ...)`` reads ``[T, B]`` int
tokens and returns ``[T, B, vocab]`` logits and the state after the last step, so a caller
carries the state from one sequence to the next (truncated BPTT, stream evaluation). Options:

* ``hidden_size`` (N_h), ``layers`` (stacking: layer k+1 reads layer k's h), ``input_size``
  (the character embedding's size; ours, the paper does not give it);
* HyperLSTM only: ``hyper_size`` (N_hhat), ``embedding_size`` (N_z), ``layer_norm`` (on the
  main LSTM; the hyper cell always has it);
* dropout probabilities: ``recurrent_dropout`` (Semeniuta et al.; the paper keeps 0.9, i.e.
  0.1), ``input_dropout`` (on the embedded characters) and ``output_dropout`` (on each layer's
  output, so between stacked layers and before the head).

Parameter roles (``MetaModel``): the hypernetwork of a HyperLSTM (its hyper cell and the Eq. 11
and scaling projections) is HYPERNET, the softmax head CLASSIFIER, everything else (embedding,
main LSTM weights, biases and layer norms) BODY.

``seeded_model`` builds a suite run's model from its seed alone (training and the report's
samples both rebuild it so).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
from torch import Tensor, nn

from metahyper.data.rng import keyed_seed
from metahyper.lm.cells import HyperLSTMCell, LSTMCell, State, dropout_mask
from metahyper.models.roles import MetaModel, ParamRole

CELLS = ("lstm", "ln_lstm", "hyper_lstm")
HYPER_PARTS = ("hyper.", "z_weight", "z_bias", "d_weight")


class CharLM(MetaModel):
    """A stacked recurrent character model (module docstring)."""

    def __init__(self, vocab_size: int, cell: str = "hyper_lstm", hidden_size: int = 1000, layers: int = 1,
                 input_size: int = 128, hyper_size: int = 128, embedding_size: int = 4, layer_norm: bool = True,
                 recurrent_dropout: float = 0.1, input_dropout: float = 0.0, output_dropout: float = 0.0):
        super().__init__()
        if cell not in CELLS:
            raise ValueError(f"unknown cell {cell!r}; known: {', '.join(CELLS)}")
        if vocab_size < 2 or layers < 1:
            raise ValueError(f"CharLM needs vocab_size >= 2 and layers >= 1, got {vocab_size}, {layers}")
        for name, p in (("input_dropout", input_dropout), ("output_dropout", output_dropout)):
            if not 0.0 <= p < 1.0:
                raise ValueError(f"{name} must be in [0, 1), got {p}")
        self.cell_type, self.vocab_size = cell, vocab_size
        self.input_dropout, self.output_dropout = input_dropout, output_dropout
        self.embedding = nn.Embedding(vocab_size, input_size)
        sizes = [input_size] + [hidden_size] * (layers - 1)
        if cell == "hyper_lstm":
            cells = [HyperLSTMCell(n, hidden_size, hyper_size, embedding_size, layer_norm, recurrent_dropout)
                     for n in sizes]
        else:
            cells = [LSTMCell(n, hidden_size, cell == "ln_lstm", recurrent_dropout) for n in sizes]
        self.cells = nn.ModuleList(cells)
        self.classifier = nn.Linear(hidden_size, vocab_size)

    def initial_state(self, batch: int) -> list[State]:
        """Zero states of every layer for ``batch`` streams."""
        like = self.classifier.weight
        return [cell.initial_state(batch, like) for cell in self.cells]

    def _drop(self, x: Tensor, p: float, noise: torch.Generator | None) -> Tensor:
        mask = dropout_mask(x, p, noise) if self.training else None
        return x if mask is None else x * mask

    def run(self, tokens: Tensor, state: list[State] | None = None,
            noise: torch.Generator | None = None) -> tuple[Tensor, list[State]]:
        """``[T, B]`` tokens -> (top layer's ``[T, B, H]`` outputs after output dropout, new state)."""
        if tokens.dim() != 2:
            raise ValueError(f"tokens must be [T, B], got shape {tuple(tokens.shape)}")
        state = self.initial_state(tokens.shape[1]) if state is None else state
        x = self._drop(self.embedding(tokens), self.input_dropout, noise)
        new_state = []
        for cell, layer_state in zip(self.cells, state):
            x_parts, prepared, outputs = cell.project_input(x), cell.prepare(), []
            for x_part in x_parts.unbind(0):
                h, layer_state = cell.step(x_part, layer_state, noise, prepared)
                outputs.append(h)
            x = self._drop(torch.stack(outputs), self.output_dropout, noise)
            new_state.append(layer_state)
        return x, new_state

    def features(self, x: Tensor) -> Tensor:
        """``[T, B]`` tokens -> ``[T, B, H]`` top-layer outputs, from a zero state."""
        return self.run(x)[0]

    def forward(self, tokens: Tensor, state: list[State] | None = None,
                noise: torch.Generator | None = None) -> tuple[Tensor, list[State]]:
        """``[T, B]`` tokens -> (``[T, B, vocab]`` logits, state after the last step)."""
        outputs, new_state = self.run(tokens, state, noise)
        return self.classifier(outputs), new_state

    def param_role(self, name: str) -> ParamRole:
        """HYPERNET for the hypernetwork of a HyperLSTM, CLASSIFIER for the head, else BODY."""
        if name.startswith("cells.") and name.split(".", 2)[2].startswith(HYPER_PARTS):
            return ParamRole.HYPERNET
        return super().param_role(name)


def detach_state(state: list[State]) -> list[State]:
    """The state cut from the graph (truncated BPTT)."""
    return [tuple(t.detach() for t in layer) for layer in state]


def seeded_model(vocab_size: int, cell: str, options: Mapping[str, Any], seed: int) -> CharLM:
    """``CharLM(vocab_size, cell, **options)`` initialised from ``seed`` alone (the global RNG is restored)."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(keyed_seed("lm-init", seed))
        return CharLM(vocab_size, cell, **options)
