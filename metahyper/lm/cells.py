"""LSTM cells for character-level language models: plain LSTM, layer-norm LSTM and HyperLSTM.

Every cell reads one time step: ``step(x_part, state, noise) -> (h, new_state)``, where
``x_part = cell.project_input(x)`` is the input's share of the gate pre-activations. It is
computed for a whole sequence in one matrix product before the time loop (``project_input``
takes ``[..., input_size]``), which is where a recurrent cell spends most of its input work.
Gates are ordered (i, g, f, o) and stored as the four blocks of a ``[4, H, ...]`` tensor.
Nothing writes into a parameter in place, so ``torch.func.functional_call`` works on every cell.

LSTM (``layer_norm=False``)::

    a^y = W_x^y x_t + W_h^y h_{t-1} + b^y                        y in (i, g, f, o)
    c_t = sigmoid(a^f) * c_{t-1} + sigmoid(a^i) * drop(tanh(a^g))
    h_t = sigmoid(a^o) * tanh(c_t)

Layer-norm LSTM (Ba et al.; ``layer_norm=True``): every ``a^y`` is replaced by
``LN(a^y) = gamma^y * (a^y - mean) / std + beta^y`` and ``tanh(c_t)`` by ``tanh(LN(c_t))``.
``drop`` is Semeniuta et al.'s recurrent dropout: only the candidate ``tanh(a^g)`` is dropped.

HyperLSTM (Ha, Dai & Le 2016, Section 3.2): a small layer-norm LSTM (N_hhat units) reads
``[x_t, h_{t-1}]`` (their Eq. 10); three linear maps of its new hidden state ``hhat_t`` give the
per-gate embeddings (Eq. 11)::

    z_h^y = W_hhat_h^y hhat_t + b_hhat_h^y,  z_x^y = W_hhat_x^y hhat_t + b_hhat_x^y,  z_b^y = W_hhat_b^y hhat_t

which become weight-scaling vectors ``d_h^y = W_hz^y z_h^y``, ``d_x^y = W_xz^y z_x^y`` and a
bias ``b^y = W_bz^y z_b^y + b_0^y``. The main pre-activation uses the memory-efficient form of
their Eq. 7/12, ``W^y(z) v = d^y(z) * (W^y v)`` (row scaling, never a materialised matrix)::

    a^y = LN(d_h^y * (W_h^y h_{t-1}) + d_x^y * (W_x^y x_t) + b^y)     (LN only with layer_norm)

Reading of "hidden state" in Eq. 11: the hyper cell's *updated* state ``hhat_t`` (computed
from ``[x_t, h_{t-1}]`` before the main step), as in the authors' released code.

Initialisation (their Appendix A.2): orthogonal weight blocks (each gate's ``[H, H]`` /
``[H, in]`` block on its own), zero biases, layer-norm gains one. In the hypernetwork
``W_hhat_h``, ``W_hhat_x`` are zero with bias one (so ``z_h = z_x = 1``), ``W_hhat_b`` is
``N(0, 0.01^2)`` (0.01 read as the standard deviation), ``W_hz`` and ``W_xz`` are ``0.1 / N_z``
(so every scaling vector starts at 0.1). ``W_bz`` is not given in the text: zero here, as in the
authors' code, so the dynamic bias starts at zero and grows from training.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

LN_EPS = 1e-5
State = tuple[Tensor, ...]


def layer_norm(x: Tensor, gain: Tensor, bias: Tensor) -> Tensor:
    """Normalise the last dimension of ``x`` to zero mean and unit variance, then ``* gain + bias``."""
    return F.layer_norm(x, x.shape[-1:], eps=LN_EPS) * gain + bias


def dropout_mask(like: Tensor, p: float, noise: torch.Generator | None) -> Tensor | None:
    """Inverted-dropout mask (entries 0 or 1/(1-p)) shaped like ``like``; None when ``p == 0``."""
    if p == 0.0:
        return None
    keep = torch.rand(like.shape, generator=noise, device=like.device, dtype=like.dtype) >= p
    return keep.to(like.dtype) / (1.0 - p)


def orthogonal_blocks(gates: int, rows: int, cols: int) -> Tensor:
    """``[gates * rows, cols]``: ``gates`` independent (semi-)orthogonal ``[rows, cols]`` blocks."""
    return torch.cat([nn.init.orthogonal_(torch.empty(rows, cols)) for _ in range(gates)])


class LSTMCell(nn.Module):
    """An LSTM step, optionally with layer normalisation and recurrent dropout (module docstring)."""

    def __init__(self, input_size: int, hidden_size: int, layer_norm: bool = False, recurrent_dropout: float = 0.0):
        super().__init__()
        if input_size < 1 or hidden_size < 1:
            raise ValueError(f"LSTMCell needs input_size and hidden_size >= 1, got {input_size}, {hidden_size}")
        if not 0.0 <= recurrent_dropout < 1.0:
            raise ValueError(f"recurrent_dropout must be in [0, 1), got {recurrent_dropout}")
        self.input_size, self.hidden_size = input_size, hidden_size
        self.use_layer_norm, self.recurrent_dropout = layer_norm, recurrent_dropout
        self.weight_x = nn.Parameter(orthogonal_blocks(4, hidden_size, input_size))
        self.weight_h = nn.Parameter(orthogonal_blocks(4, hidden_size, hidden_size))
        self.bias = nn.Parameter(torch.zeros(4 * hidden_size))
        if layer_norm:
            self.ln_gain = nn.Parameter(torch.ones(4, hidden_size))
            self.ln_bias = nn.Parameter(torch.zeros(4, hidden_size))
            self.ln_c_gain = nn.Parameter(torch.ones(hidden_size))
            self.ln_c_bias = nn.Parameter(torch.zeros(hidden_size))

    def initial_state(self, batch: int, like: Tensor) -> State:
        """Zero (h, c) of ``batch`` rows, on ``like``'s device and dtype."""
        zeros = like.new_zeros(batch, self.hidden_size)
        return zeros, zeros

    def project_input(self, x: Tensor) -> Tensor:
        """``[..., input_size] -> [..., 4H]``: W_x x (the bias is added in ``step``)."""
        return x @ self.weight_x.t()

    def prepare(self) -> tuple[Tensor, ...]:
        """Per-sequence views of the weights that ``step`` uses (``(W_h^T,)``)."""
        return (self.weight_h.t(),)

    def gates(self, x_part: Tensor, h_part: Tensor) -> Tensor:
        """``[B, 4, H]`` gate pre-activations from W_x x and W_h h (layer-normed per gate when enabled)."""
        a = (x_part + h_part + self.bias).view(-1, 4, self.hidden_size)
        return layer_norm(a, self.ln_gain, self.ln_bias) if self.use_layer_norm else a

    def update(self, a: Tensor, c: Tensor, noise: torch.Generator | None) -> State:
        """(h_t, c_t) from the ``[B, 4, H]`` pre-activations and c_{t-1}."""
        i, g, f, o = a.unbind(1)
        candidate = torch.tanh(g)
        mask = dropout_mask(candidate, self.recurrent_dropout, noise) if self.training else None
        if mask is not None:
            candidate = candidate * mask
        c_new = torch.sigmoid(f) * c + torch.sigmoid(i) * candidate
        c_out = layer_norm(c_new, self.ln_c_gain, self.ln_c_bias) if self.use_layer_norm else c_new
        return torch.sigmoid(o) * torch.tanh(c_out), c_new

    def step(self, x_part: Tensor, state: State, noise: torch.Generator | None = None,
             prepared: tuple[Tensor, ...] | None = None) -> tuple[Tensor, State]:
        """One time step; ``state = (h, c)``; ``prepared`` = ``self.prepare()`` (made when None)."""
        (weight_h_t,) = prepared or self.prepare()
        h, c = self.update(self.gates(x_part, state[0] @ weight_h_t), state[1], noise)
        return h, (h, c)


class HyperLSTMCell(nn.Module):
    """Ha et al.'s HyperLSTM step (module docstring). ``state = (h, c, hhat, chat)``."""

    def __init__(self, input_size: int, hidden_size: int, hyper_size: int = 128, embedding_size: int = 4,
                 layer_norm: bool = True, recurrent_dropout: float = 0.0):
        super().__init__()
        if min(hyper_size, embedding_size) < 1:
            raise ValueError(f"HyperLSTMCell needs hyper_size and embedding_size >= 1, got {hyper_size}, {embedding_size}")
        self.main = LSTMCell(input_size, hidden_size, layer_norm, recurrent_dropout)
        self.hyper = LSTMCell(input_size + hidden_size, hyper_size, True, recurrent_dropout)
        self.input_size, self.hidden_size = input_size, hidden_size
        self.hyper_size, self.embedding_size = hyper_size, embedding_size
        # Eq. 11 projections [kind (h, x, b), gate, N_z, N_hhat]; biases only for kinds h and x.
        z_weight = torch.zeros(3, 4, embedding_size, hyper_size)
        z_weight[2] = torch.randn(4, embedding_size, hyper_size) * 0.01
        self.z_weight = nn.Parameter(z_weight)
        self.z_bias = nn.Parameter(torch.ones(2, 4, embedding_size))
        # W_hz, W_xz, W_bz as [kind, gate, H, N_z].
        d_weight = torch.full((3, 4, hidden_size, embedding_size), 0.1 / embedding_size)
        d_weight[2] = 0.0
        self.d_weight = nn.Parameter(d_weight)

    def initial_state(self, batch: int, like: Tensor) -> State:
        """Zero (h, c, hhat, chat)."""
        return self.main.initial_state(batch, like) + self.hyper.initial_state(batch, like)

    def project_input(self, x: Tensor) -> Tensor:
        """``[..., input_size] -> [..., 4H + 4 N_hhat]``: the main and the hyper cell's W_x x."""
        hyper_x = x @ self.hyper.weight_x[:, : self.input_size].t()
        return torch.cat([self.main.project_input(x), hyper_x], dim=-1)

    def prepare(self) -> tuple[Tensor, ...]:
        """Per-sequence weight layouts for ``step``: ``h_{t-1}`` meets the main W_h and the
        hyper cell's weights for it in one product; the Eq. 11 projections as one matrix; the
        scaling projections as 12 ``[N_z, H]`` blocks for one batched product."""
        hyper_h = self.hyper.weight_x[:, self.input_size:]
        z_bias = torch.cat([self.z_bias.flatten(), self.z_bias.new_zeros(4 * self.embedding_size)])
        d_weight = self.d_weight.reshape(12, self.hidden_size, self.embedding_size).transpose(1, 2)
        return (torch.cat([self.main.weight_h, hyper_h]).t(), self.hyper.prepare(),
                self.z_weight.reshape(-1, self.hyper_size).t(), z_bias, d_weight)

    def step_with_scales(self, x_part: Tensor, state: State, noise: torch.Generator | None = None,
                         prepared: tuple | None = None) -> tuple[Tensor, State, Tensor]:
        """One time step; also returns the scales it used, ``[3, 4, B, H]``: (d_h, d_x,
        W_bz z_b) per gate (Eq. 11, 12), for diagnostics."""
        weight_h_t, hyper_prepared, z_weight_t, z_bias, d_weight = prepared or self.prepare()
        h, c, batch, size = state[0], state[1], x_part.shape[0], 4 * self.hidden_size
        main_h, hyper_h = (h @ weight_h_t).split([size, 4 * self.hyper_size], dim=-1)
        hhat, hyper_state = self.hyper.step(x_part[:, size:] + hyper_h, state[2:], noise, hyper_prepared)
        z = (hhat @ z_weight_t + z_bias).view(batch, 12, self.embedding_size).transpose(0, 1)
        d = torch.bmm(z, d_weight).view(3, 4, batch, self.hidden_size)
        d_h, d_x, d_b = (part.transpose(0, 1) for part in d.unbind(0))
        shape = (batch, 4, self.hidden_size)
        a = d_h * main_h.view(shape) + d_x * x_part[:, :size].view(shape) + d_b + self.main.bias.view(4, -1)
        if self.main.use_layer_norm:
            a = layer_norm(a, self.main.ln_gain, self.main.ln_bias)
        h_new, c_new = self.main.update(a, c, noise)
        return h_new, (h_new, c_new) + hyper_state, d

    def step(self, x_part: Tensor, state: State, noise: torch.Generator | None = None,
             prepared: tuple | None = None) -> tuple[Tensor, State]:
        """One time step; ``state = (h, c, hhat, chat)``; ``prepared`` = ``self.prepare()``."""
        h, new_state, _ = self.step_with_scales(x_part, state, noise, prepared)
        return h, new_state
