"""Two ways to run the tasks of a meta-batch that give the same numbers.

``loop``: one task after another with ``inner_loop`` (``torch.autograd.grad``); with
``accumulate=True`` each task's share of the outer loss is backpropagated at once, so only one
task's graph is alive at a time (the least memory). This is the reference and the default.

``vmap``: ``torch.func.vmap`` over the task axis of a function that runs the inner loop with
``torch.func.grad``. At second order it runs ``MetaBatchNorm2d`` in plain tensor ops
(``norm_statistics(..., fused=False)``): ``F.batch_norm`` (as inside ``nn.BatchNorm2d``) under
vmap with per-task affine parameters gives wrong second-order gradients (docs/architecture.md
section 8). The float64 parity tests in tests/meta/test_maml_backends.py hold it to the loop.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor, nn

from metahyper.data.episodes import TaskBatch
from metahyper.meta.inner import LearningRate, inner_loop, inner_loop_functional, query_loss_and_accuracy
from metahyper.models.norm import norm_statistics
from metahyper.models.roles import Params

BACKENDS = ("auto", "loop", "vmap")


@dataclass(frozen=True)
class TaskRun:
    """How to adapt: the starting fast dict, the frozen dict and the inner-loop settings."""

    fast: Params  # name -> starting tensor of every adapted parameter
    frozen: Params  # name -> detached tensor of every parameter that gets no gradient
    steps: int
    lr: LearningRate  # one lr, or parameter name -> lr
    first_order: bool


@dataclass(frozen=True)
class TaskResults:
    """Per-task outcome of a meta-batch of T tasks."""

    losses: Tensor  # [T] query losses (no graph when accumulated)
    accuracies: Tensor  # [T] query accuracies
    adapted: Params | None  # name -> [T, *shape] detached adapted tensors, when asked for


def resolve_backend(backend: str) -> str:
    """``auto`` -> ``loop``, on every device.

    Measured on CPU (benchmarks/speed/maml.py) the loop runs at the peers' speed and vmap
    1.15-1.35x slower with ~3x the memory (second order). The GPU figure is pending: no GPU
    has run this code yet, so the loop is the GPU default too. ``benchmarks/gpu_check.sh``
    decides it: its summary's ``recommendation`` is ``vmap`` only if vmap beat the loop in every
    row (Conv4 and ResNet-12 at 84x84, first and second order) of its CUDA MAML timings; only
    then should ``auto`` pick vmap on CUDA (and this docstring record those figures).
    """
    if backend not in BACKENDS:
        raise ValueError(f"MAML backend must be one of {BACKENDS}, got {backend!r}")
    return "loop" if backend == "auto" else backend


def run_tasks(
    model: nn.Module, run: TaskRun, batch: TaskBatch, backend: str, accumulate: bool, keep_adapted: bool
) -> TaskResults:
    """Adapt to every task of ``batch`` and score its queries with the chosen backend.

    ``accumulate=True`` backpropagates the mean query loss into the parameters' ``.grad``
    (per task for the loop) and returns losses without a graph.
    """
    if backend == "loop":
        return _run_loop(model, run, batch, accumulate, keep_adapted)
    results = _run_vmap(model, run, batch, keep_adapted)
    if accumulate:
        results.losses.mean().backward()
        results = TaskResults(results.losses.detach(), results.accuracies, results.adapted)
    return results


def _run_loop(model: nn.Module, run: TaskRun, batch: TaskBatch, accumulate: bool, keep_adapted: bool) -> TaskResults:
    tasks = batch.support_x.shape[0]
    losses, accuracies, adapted = [], [], []
    for t in range(tasks):
        fast = inner_loop(
            model, run.fast, batch.support_x[t], batch.support_y[t], run.steps, run.lr,
            create_graph=not run.first_order, frozen=run.frozen,
        )
        with norm_statistics(model, "batch"):
            loss, accuracy = query_loss_and_accuracy(model, {**run.frozen, **fast}, batch.query_x[t], batch.query_y[t])
        if accumulate:
            (loss / tasks).backward()
            loss = loss.detach()
        losses.append(loss)
        accuracies.append(accuracy)
        if keep_adapted:
            adapted.append({n: p.detach() for n, p in fast.items()})
    stacked = {n: torch.stack([a[n] for a in adapted]) for n in run.fast} if keep_adapted else None
    return TaskResults(torch.stack(losses), torch.stack(accuracies), stacked)


def _run_vmap(model: nn.Module, run: TaskRun, batch: TaskBatch, keep_adapted: bool) -> TaskResults:
    def one_task(sx: Tensor, sy: Tensor, qx: Tensor, qy: Tensor) -> tuple[Tensor, Tensor, Params]:
        fast = inner_loop_functional(model, run.fast, run.frozen, sx, sy, run.steps, run.lr, run.first_order)
        loss, accuracy = query_loss_and_accuracy(model, {**run.frozen, **fast}, qx, qy)
        return loss, accuracy, fast

    with norm_statistics(model, "batch", fused=run.first_order):
        losses, accuracies, fast = torch.func.vmap(one_task, randomness="error")(
            batch.support_x, batch.support_y, batch.query_x, batch.query_y
        )
    adapted = {n: p.detach() for n, p in fast.items()} if keep_adapted else None
    return TaskResults(losses, accuracies, adapted)
