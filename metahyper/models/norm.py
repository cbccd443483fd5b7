"""Batch normalisation that meta-learning can trust.

``MetaBatchNorm2d`` is ``nn.BatchNorm2d`` with three switches that ``norm_statistics`` sets on
every such layer of a model for the duration of a ``with`` block:

* ``source="batch"``: always normalise with the statistics of the current batch and never touch
  the running statistics. MAML's inner and outer loops run in this mode (docs/architecture.md section 7:
  no running statistics during meta-training), so the forward pass is a pure function of its
  inputs and parameters and is safe under ``torch.func`` transforms (``vmap``, ``grad``).
* ``rows=n``: take the statistics from the first ``n`` rows of the batch only. Evaluating
  ``cat([support, query])`` with ``rows=len(support)`` is the *inductive* test-time mode: each
  query is normalised with the support set's statistics, so a query's logits do not depend on
  the other queries (the transductive default leaks across queries: learn2learn#207, higher#107).
* ``fused=False``: compute batch statistics with tensor ops (``var_mean`` and one ``addcmul``)
  instead of ``F.batch_norm``'s fused kernels. Both give the same numbers up to rounding, also
  their first and second derivatives, except under ``torch.func.vmap`` with per-task (batched)
  affine parameters: there the batching rule of ``F.batch_norm``'s backward yields wrong second
  derivatives (measured ~1e-3 relative in float64; a conv bias before batch norm gets a non-zero
  meta-gradient, docs/architecture.md section 8), so the vmap backend at second order switches
  the fused kernels off. Everywhere else the fused kernels are faster (forward and backward in
  one pass each; benchmarks/RESULTS.md).

Outside such a block the layer behaves exactly like ``nn.BatchNorm2d`` (batch statistics and a
running-average update in ``train()``, running statistics in ``eval()``), which is what
supervised pretraining and CIFAR classification use.
"""

from __future__ import annotations

from contextlib import contextmanager
from typing import Iterator, Optional

import torch
import torch.nn.functional as F
from torch import Tensor, nn

STAT_SOURCES = ("auto", "batch")


class MetaBatchNorm2d(nn.Module):
    """Drop-in ``nn.BatchNorm2d`` (affine, with running statistics) with meta-learning modes."""

    def __init__(self, num_features: int, eps: float = 1e-5, momentum: float = 0.1):
        super().__init__()
        self.num_features = num_features
        self.eps = eps
        self.momentum = momentum
        self.weight = nn.Parameter(torch.ones(num_features))
        self.bias = nn.Parameter(torch.zeros(num_features))
        self.register_buffer("running_mean", torch.zeros(num_features))
        self.register_buffer("running_var", torch.ones(num_features))
        self.stat_source = "auto"
        self.stat_rows: Optional[int] = None
        self.stat_fused = True

    def forward(self, x: Tensor) -> Tensor:
        """[B, C, H, W] -> [B, C, H, W]."""
        if not (self.stat_source == "batch" or self.training):
            return F.batch_norm(x, self.running_mean, self.running_var, self.weight, self.bias, False, 0.0, self.eps)
        if self.stat_rows is not None or not self.stat_fused:
            return self._normalise_by_reference(x)
        running = (self.running_mean, self.running_var) if self.stat_source == "auto" else (None, None)
        return F.batch_norm(x, *running, self.weight, self.bias, True, self.momentum, self.eps)

    def _normalise_by_reference(self, x: Tensor) -> Tensor:
        """``normalise_by_rows`` with this layer's parameters and ``stat_rows``; in ``auto`` mode
        the running statistics follow the reference rows."""
        out, mean, var = normalise_by_rows(x, self.weight, self.bias, self.eps, self.stat_rows)
        if self.stat_source == "auto":
            self._update_running_stats(x if self.stat_rows is None else x[: self.stat_rows], mean, var)
        return out

    @torch.no_grad()
    def _update_running_stats(self, reference: Tensor, mean: Tensor, var: Tensor) -> None:
        n = reference.numel() / reference.shape[1]
        unbiased = var.detach() * (n / max(n - 1, 1))
        self.running_mean.lerp_(mean.detach(), self.momentum)
        self.running_var.lerp_(unbiased, self.momentum)

    def extra_repr(self) -> str:
        return f"{self.num_features}, eps={self.eps}, momentum={self.momentum}"


def normalise_by_rows(x: Tensor, weight: Tensor, bias: Tensor, eps: float, rows: Optional[int] = None
                      ) -> tuple[Tensor, Tensor, Tensor]:
    """Batch norm in tensor ops: x [B, C, H, W] normalised per channel with the mean and biased
    variance of its first ``rows`` rows (all rows when ``None``), scaled by ``weight`` [C] and
    shifted by ``bias`` [C]. Gradients flow through the statistics, which ``F.batch_norm`` cannot
    do for given statistics (it takes them only as running statistics). Returns (output
    [B, C, H, W], mean [C], var [C])."""
    reference = x if rows is None else x[:rows]
    var, mean = torch.var_mean(reference, dim=(0, 2, 3), correction=0)
    scale = weight * torch.rsqrt(var + eps)
    shift = bias - mean * scale
    return torch.addcmul(shift[:, None, None], x, scale[:, None, None]), mean, var


@contextmanager
def norm_statistics(model: nn.Module, source: str = "batch", rows: Optional[int] = None, *,
                    fused: bool = True) -> Iterator[None]:
    """Within the block, every ``MetaBatchNorm2d`` in ``model`` uses ``source``/``rows``/``fused``.

    ``source="batch"`` uses batch statistics and freezes running statistics; ``rows=n`` takes
    the statistics from the first ``n`` rows (inductive evaluation); ``fused=False`` computes
    batch statistics in tensor ops (module docstring: second derivatives under ``vmap``).
    Settings are restored on exit, also when the block raises.
    """
    if source not in STAT_SOURCES:
        raise ValueError(f"norm statistics source must be one of {STAT_SOURCES}, got {source!r}")
    if rows is not None and rows < 1:
        raise ValueError(f"norm statistics rows must be >= 1, got {rows}")
    layers = [m for m in model.modules() if isinstance(m, MetaBatchNorm2d)]
    saved = [(m.stat_source, m.stat_rows, m.stat_fused) for m in layers]
    for m in layers:
        m.stat_source, m.stat_rows, m.stat_fused = source, rows, fused
    try:
        yield
    finally:
        for m, (src, r, f) in zip(layers, saved):
            m.stat_source, m.stat_rows, m.stat_fused = src, r, f
