"""MAML's inner loop as pure functions of a parameter dict (docs/architecture.md sections 4 and 7).

Only the adapted parameters travel in ``fast``; every other parameter is read from the module by
``torch.func.functional_call(..., strict=False)`` (or taken from ``frozen``, detached copies of
the parameters that must receive no gradient), so a query loss computed with the adapted
parameters reaches the hypernetworks through the generated kernels. Batch norm runs on batch
statistics (``norm_statistics(model, "batch")``): no running statistics are read or written.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.func import functional_call

from metahyper.models.norm import norm_statistics
from metahyper.models.roles import Params


def call_with(model: nn.Module, params: Params, x: Tensor) -> Tensor:
    """Logits [B, classes] of ``model`` on ``x`` [B, C, H, W] with ``params`` overriding its own
    (batch norm as the caller's ``norm_statistics`` block, or the module's mode, sets it)."""
    return functional_call(model, params, (x,), strict=False)


def forward_with(model: nn.Module, params: Params, x: Tensor) -> Tensor:
    """Logits [B, classes] of ``model`` on ``x`` [B, C, H, W] with ``params`` (name -> tensor, e.g.
    what ``metahyper.meta.maml.adapt`` returns) in place of those parameters of the model; the
    others are the model's own. Batch norm uses the statistics of ``x`` and leaves the running
    statistics alone, as in MAML's inner loop and query loss; ``metahyper.meta.maml.predict``
    offers the inductive test-time mode."""
    with norm_statistics(model, "batch"):
        return call_with(model, params, x)


LearningRate = float | Mapping[str, float]  # one lr for every tensor, or key -> lr


def check_inner_args(steps: int, lr: LearningRate) -> None:
    """Raise a ValueError naming the argument (and the key of a mapping ``lr``) when ``steps``
    or ``lr`` is unusable."""
    if isinstance(steps, bool) or not isinstance(steps, int) or steps < 0:
        raise ValueError(f"inner-loop steps must be an int >= 0, got {steps!r}")
    items = lr.items() if isinstance(lr, Mapping) else [(None, lr)]
    if not items:
        raise ValueError("inner-loop lr mapping must not be empty")
    for key, value in items:
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0:
            where = "" if key is None else f" of {key!r}"
            raise ValueError(f"inner-loop lr{where} must be a number > 0, got {value!r}")


def lrs_by_name(lr: LearningRate, names: tuple[str, ...]) -> dict[str, float]:
    """name -> lr for every name in ``names``: a number applies to all, a mapping (by parameter
    name) must cover each of them (a ValueError names the first it lacks)."""
    if not isinstance(lr, Mapping):
        return dict.fromkeys(names, lr)
    missing = [n for n in names if n not in lr]
    if missing:
        raise ValueError(f"inner-loop lr mapping has no lr for parameter {missing[0]!r}")
    return {n: lr[n] for n in names}


def inner_loop(
    model: nn.Module,
    fast: Params,
    x: Tensor,
    y: Tensor,
    steps: int,
    lr: LearningRate,
    create_graph: bool,
    *,
    frozen: Params | None = None,
    loss: Callable[[Tensor, Tensor], Tensor] = F.cross_entropy,
) -> Params:
    """Plain SGD on ``fast`` for ``steps`` steps of ``loss(logits, y)`` (cross-entropy) on the support set.

    ``lr``: one learning rate, or parameter name -> learning rate covering every name in
    ``fast`` (``lrs_by_name``; MAML builds it from per-role rates).
    x: [B, C, H, W] float support images; y: [B] int64 labels. ``fast`` maps names (as in
    ``named_parameters()``) to the starting tensors; ``frozen`` optionally maps further names to
    tensors used as they are (detached copies keep gradients off parameters that must not
    move). ``loss`` maps the model's output and ``y`` to the scalar to descend (the grouped
    backend sums its tasks' cross-entropies). ``create_graph=True`` keeps the graph of every
    inner gradient (second-order MAML); with ``False`` each step's gradient is a constant, but
    the update ``p - lr * g`` still links the adapted tensors to the starting ones (first-order
    MAML). Returns the adapted dict.
    """
    check_inner_args(steps, lr)
    frozen = frozen or {}
    names = tuple(fast)
    lrs = lrs_by_name(lr, names)
    with norm_statistics(model, "batch"):
        for _ in range(steps):
            value = loss(call_with(model, {**frozen, **fast}, x), y)
            grads = torch.autograd.grad(
                value, [fast[n] for n in names], create_graph=create_graph, materialize_grads=True
            )
            fast = {n: fast[n] - lrs[n] * g for n, g in zip(names, grads)}
    return fast


def inner_loop_functional(
    model: nn.Module,
    fast: Params,
    frozen: Params,
    x: Tensor,
    y: Tensor,
    steps: int,
    lr: LearningRate,
    first_order: bool,
) -> Params:
    """``inner_loop`` written with ``torch.func.grad`` so that it runs under ``torch.func.vmap``.

    Same arguments and result as ``inner_loop`` (``first_order`` = not ``create_graph``); the
    caller sets ``norm_statistics(model, "batch")`` around the transform. ``torch.func.grad``
    composes with ordinary autograd, so gradients of the result reach the starting tensors
    and the module's own parameters.
    """

    def support_loss(params: Params) -> Tensor:
        return F.cross_entropy(call_with(model, {**frozen, **params}, x), y)

    lrs = lrs_by_name(lr, tuple(fast))
    for _ in range(steps):
        grads = torch.func.grad(support_loss)(fast)
        if first_order:
            grads = {n: g.detach() for n, g in grads.items()}
        fast = {n: fast[n] - lrs[n] * grads[n] for n in fast}
    return fast


def query_loss_and_accuracy(model: nn.Module, params: Params, x: Tensor, y: Tensor) -> tuple[Tensor, Tensor]:
    """Cross-entropy and accuracy (both scalars) of ``model`` with ``params`` on x [B, C, H, W], y [B]."""
    logits = call_with(model, params, x)
    accuracy = (logits.detach().argmax(dim=-1) == y).to(logits.dtype).mean()
    return F.cross_entropy(logits, y), accuracy
