"""Multi-process MAML without DistributedDataParallel (docs/architecture.md section 11).

DDP does not support second-order gradients (pytorch#63929), so each rank backpropagates its
own tasks and the ``.grad`` tensors are all-reduce-averaged before the optimiser step, as in
learn2learn's distributed_maml example. Without an initialised process group everything here
is a no-op for a world of one. ``world()`` itself lives in ``metahyper.ranks`` (the data layer
reads it too) and is re-exported here for the meta-training code.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.distributed as dist
from torch import Tensor, nn

from metahyper.ranks import world


def broadcast_state(module: nn.Module) -> None:
    """Copy rank 0's parameters and buffers to every rank (identical starting points)."""
    if world()[1] == 1:
        return
    for tensor in module.state_dict().values():
        dist.broadcast(tensor, src=0)


def average_gradients(params: Sequence[nn.Parameter]) -> None:
    """Replace every ``p.grad`` by its mean over the ranks (one flat all-reduce).

    A missing gradient counts as zeros, so every rank ends with the same ``.grad`` tensors.
    """
    _, size = world()
    if size == 1 or not params:
        return
    flat = torch.cat([(p.grad if p.grad is not None else torch.zeros_like(p)).reshape(-1) for p in params])
    dist.all_reduce(flat)
    flat /= size
    for p, chunk in zip(params, flat.split([p.numel() for p in params])):
        p.grad = chunk.view_as(p)


def average_scalars(*values: Tensor) -> list[float]:
    """Mean over the ranks of each scalar tensor in ``values``, as Python floats."""
    stacked = torch.stack([v.detach().reshape(()) for v in values])
    if world()[1] > 1:
        dist.all_reduce(stacked)
        stacked /= world()[1]
    return stacked.tolist()
