"""MAML run by the peer libraries (higher 0.2.1, learn2learn 0.2.0) on a metahyper model.

The tests use these as independent references for our meta-gradients and the speed benchmark
uses them as peers, so both run the peers in exactly one way. Both libraries are optional and
imported on call. Batch norm runs in batch-statistics mode, as in metahyper's own MAML.
"""

from __future__ import annotations

import warnings

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from metahyper.data.episodes import TaskBatch
from metahyper.models.norm import norm_statistics


def higher_maml(model: nn.Module, batch: TaskBatch, steps: int, lr: float, first_order: bool) -> list[list[Tensor]]:
    """Meta-gradient of the mean query loss into ``model``'s ``.grad`` via ``higher.innerloop_ctx``.

    batch: float TaskBatch of T tasks. Returns each task's adapted parameters (detached), in
    ``model.parameters()`` order.
    """
    import higher

    tasks, adapted = len(batch.support_x), []
    callback = (lambda grads: [g.detach() for g in grads]) if first_order else None
    with norm_statistics(model, "batch"):
        for t in range(tasks):
            opt = torch.optim.SGD(model.parameters(), lr=lr)
            with higher.innerloop_ctx(model, opt, copy_initial_weights=False) as (fmodel, diffopt):
                for _ in range(steps):
                    loss = F.cross_entropy(fmodel(batch.support_x[t]), batch.support_y[t])
                    diffopt.step(loss, grad_callback=callback)
                (F.cross_entropy(fmodel(batch.query_x[t]), batch.query_y[t]) / tasks).backward()
                adapted.append([p.detach() for p in fmodel.parameters()])
    return adapted


def learn2learn_maml(model: nn.Module, batch: TaskBatch, steps: int, lr: float, first_order: bool) -> list[list[Tensor]]:
    """As ``higher_maml``, with learn2learn's ``MAML(model).clone()/adapt()``."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import learn2learn as l2l

    maml = l2l.algorithms.MAML(model, lr=lr, first_order=first_order)
    tasks, adapted = len(batch.support_x), []
    with norm_statistics(model, "batch"):
        for t in range(tasks):
            learner = maml.clone()
            for _ in range(steps):
                learner.adapt(F.cross_entropy(learner(batch.support_x[t]), batch.support_y[t]))
            (F.cross_entropy(learner(batch.query_x[t]), batch.query_y[t]) / tasks).backward()
            adapted.append([p.detach() for p in learner.parameters()])
    return adapted
