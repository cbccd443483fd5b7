"""Three ways to run the tasks of a meta-batch that give the same numbers.

``loop``: one task after another with ``inner_loop`` (``torch.autograd.grad``); with
``accumulate=True`` each task's share of the outer loss is backpropagated at once, so only one
task's graph is alive at a time (the least memory). This is the reference and the default.

``vmap``: ``torch.func.vmap`` over the task axis of a function that runs the inner loop with
``torch.func.grad``. At second order it runs ``MetaBatchNorm2d`` in plain tensor ops
(``norm_statistics(..., fused=False)``): ``F.batch_norm`` (as inside ``nn.BatchNorm2d``) under
vmap with per-task affine parameters gives wrong second-order gradients (docs/architecture.md
section 8). The float64 parity tests in tests/meta/test_maml_backends.py hold it to the loop.

``grouped``: all tasks in one network pass with per-task weights stacked, convolutions with
``groups = T``, batch statistics per task and per-task classifier heads
(``metahyper.models.grouped``); the inner loop descends the sum of the tasks' support losses,
whose gradient with respect to task t's weights is task t's own. A model with a layer that the
grouped pass cannot split per task is refused by name. tests/meta/test_maml_grouped.py holds it
to the loop in float64 (first and second order, plain and hyper models).

``auto`` means the backend measured fastest on the device kind (``metahyper.meta.backend_choice``).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from metahyper.data.episodes import TaskBatch
from metahyper.meta.inner import (
    LearningRate,
    forward_with,
    inner_loop,
    inner_loop_functional,
    query_loss_and_accuracy,
)
from metahyper.models.grouped import group_images, grouped_layers, ungroup
from metahyper.models.norm import norm_statistics
from metahyper.models.roles import Params

BACKENDS = ("auto", "loop", "vmap", "grouped")


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


def run_tasks(
    model: nn.Module, run: TaskRun, batch: TaskBatch, backend: str, accumulate: bool, keep_adapted: bool
) -> TaskResults:
    """Adapt to every task of ``batch`` and score its queries with the chosen backend.

    ``accumulate=True`` backpropagates the mean query loss into the parameters' ``.grad``
    (per task for the loop) and returns losses without a graph.
    """
    if backend == "loop":
        return _run_loop(model, run, batch, accumulate, keep_adapted)
    results = (_run_grouped if backend == "grouped" else _run_vmap)(model, run, batch, keep_adapted)
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


def task_losses(logits: Tensor, y: Tensor) -> Tensor:
    """[T] mean cross-entropy of each task from grouped logits [B, T*K] and labels [T, B]."""
    tasks = y.shape[0]
    per_task = ungroup(logits, tasks)
    losses = F.cross_entropy(per_task.reshape(-1, per_task.shape[-1]), y.reshape(-1), reduction="none")
    return losses.view(tasks, -1).mean(dim=1)


def _run_grouped(model: nn.Module, run: TaskRun, batch: TaskBatch, keep_adapted: bool) -> TaskResults:
    tasks = batch.support_x.shape[0]
    fast = {n: p.expand(tasks, *p.shape) for n, p in run.fast.items()}
    with grouped_layers(model, tasks, fast, double_backward=not run.first_order):
        fast = inner_loop(
            model, fast, group_images(batch.support_x), batch.support_y, run.steps, run.lr,
            create_graph=not run.first_order, frozen=run.frozen, loss=lambda logits, y: task_losses(logits, y).sum(),
        )
    with grouped_layers(model, tasks, fast):
        logits = forward_with(model, {**run.frozen, **fast}, group_images(batch.query_x))
    per_task = ungroup(logits.detach(), tasks)
    accuracies = (per_task.argmax(dim=-1) == batch.query_y).to(logits.dtype).mean(dim=1)
    adapted = {n: p.detach() for n, p in fast.items()} if keep_adapted else None
    return TaskResults(task_losses(logits, batch.query_y), accuracies, adapted)
