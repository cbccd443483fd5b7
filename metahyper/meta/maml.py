"""MAML with role-split inner and outer loops (Babu et al., Algorithm 2; docs/architecture.md sections 4, 7).

For a hypernetwork model the inner loop adapts EMBEDDING and CLASSIFIER parameters and the outer
optimiser updates HYPERNET and CLASSIFIER parameters. What that means for gradients:

* a parameter in both loops (the classifier) starts the inner loop from the module's own tensor,
  so its initial value receives the meta-gradient;
* a parameter only in the inner loop (the embeddings) starts from a detached copy: every task
  adapts from the pretrained value, and no meta-gradient reaches (or moves) that value;
* a parameter only in the outer loop (the hypernetworks) is read from the module, so the query
  loss reaches it through the kernels generated from the adapted embeddings (second order: also
  through the inner-loop gradients);
* every other parameter is passed in detached and gets no gradient at all (``.grad`` stays
  ``None``).

A hyper model's BODY weights (batch norm, stem, 1x1 shortcuts, a stage's ungenerated first conv)
are neither embedding, hypernetwork nor classifier, and the paper does not say what MAML does
with them. ``MamlConfig.other_weights`` makes that an explicit setting (``OTHER_WEIGHTS``):
``frozen`` (in neither loop: they keep their pretrained values), ``outer`` (meta-trained by the
outer optimiser, as a plain model's weights are) or ``both`` (also adapted in the inner loop).

``outer_parameters`` is what the outer optimiser must receive. For plain models both loops cover
all weights (BODY and CLASSIFIER), which is standard MAML, whatever ``other_weights`` says.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import torch
from torch import Tensor

from metahyper.data.episodes import TaskBatch
from metahyper.meta.backend_choice import resolve_backend
from metahyper.meta.backends import BACKENDS, TaskRun, run_tasks
from metahyper.meta.inner import LearningRate, call_with, check_inner_args, inner_loop, inner_loop_functional
from metahyper.meta.metrics import inner_movement
from metahyper.models.norm import norm_statistics
from metahyper.models.roles import MetaModel, ParamRole, Params
from metahyper.models.wrap import require_meta_model

BN_MODES = ("transductive", "inductive")
HYPER_ROLES = (("embedding", "classifier"), ("hypernet", "classifier"))
PLAIN_ROLES = (("body", "classifier"), ("body", "classifier"))
OTHER_WEIGHTS = {  # other_weights -> a hyper model's (inner roles, outer roles)
    "frozen": HYPER_ROLES,
    "outer": (("embedding", "classifier"), ("hypernet", "classifier", "body")),
    "both": (("embedding", "classifier", "body"), ("hypernet", "classifier", "body")),
}


@dataclass(frozen=True)
class MamlConfig:
    """MAML settings. ``inner_roles``/``outer_roles`` ``None`` = ``default_roles(model,
    other_weights)``.

    ``inner_lr``: one inner-loop learning rate, or role -> learning rate naming exactly the
    inner roles (e.g. ``{embedding: 0.01, classifier: 0.1}`` for a hyper model: the embeddings'
    step is the paper's adaptation knob, tuned apart from the head's).
    ``other_weights``: what the loops do with a hyper model's BODY weights (module docstring);
    it picks the default of whichever of ``inner_roles``/``outer_roles`` is not given (ANIL
    sets only the inner roles, so its outer loop follows ``other_weights``).
    """

    inner_roles: tuple[str, ...] | None = None
    outer_roles: tuple[str, ...] | None = None
    inner_steps: int = 5
    inner_lr: float | dict[str, float] = 0.01
    first_order: bool = False
    backend: str = "auto"  # "auto" (measured per device kind) | "loop" | "vmap" | "grouped"
    other_weights: str = "frozen"

    def __post_init__(self) -> None:
        if self.other_weights not in OTHER_WEIGHTS:
            raise ValueError(f"MamlConfig.other_weights must be one of {list(OTHER_WEIGHTS)}, "
                             f"got {self.other_weights!r}")
        for name in ("inner_roles", "outer_roles"):
            roles = getattr(self, name)
            if roles is not None:
                if isinstance(roles, str) or not roles:
                    raise ValueError(f"MamlConfig.{name} must be a non-empty tuple of roles, got {roles!r}")
                object.__setattr__(self, name, tuple(ParamRole.parse(r).value for r in roles))
        if isinstance(self.inner_lr, Mapping):
            lrs = {ParamRole.parse(role).value: lr for role, lr in self.inner_lr.items()}
            object.__setattr__(self, "inner_lr", lrs)
            if self.inner_roles is not None:
                check_lr_roles(lrs, self.inner_roles)
        check_inner_args(self.inner_steps, self.inner_lr)
        if self.backend not in BACKENDS:
            raise ValueError(f"MamlConfig.backend must be one of {BACKENDS}, got {self.backend!r}")


@dataclass(frozen=True)
class MetaOutput:
    """Outcome of one meta-batch: mean query loss, mean accuracy, inner-loop movement."""

    loss: Tensor  # scalar; carries the outer graph unless it was already backpropagated
    accuracy: Tensor  # scalar, no graph
    movement: dict[str, float] = field(default_factory=dict)


def check_lr_roles(lrs: Mapping[str, float], inner_roles: tuple[str, ...]) -> None:
    """Raise a ValueError naming the role unless the per-role ``lrs`` name exactly ``inner_roles``."""
    wanted = {ParamRole.parse(r).value for r in inner_roles}
    listed = ", ".join(sorted(wanted))
    for role in sorted(wanted - set(lrs)):
        raise ValueError(f"MamlConfig.inner_lr has no lr for inner role {role!r} (inner roles: {listed})")
    for role in sorted(set(lrs) - wanted):
        raise ValueError(f"MamlConfig.inner_lr names role {role!r}, which is not an inner role (inner roles: {listed})")


def default_roles(model: MetaModel, other_weights: str = "frozen") -> tuple[tuple[str, ...], tuple[str, ...]]:
    """(inner roles, outer roles): the hyper split under ``other_weights`` (``OTHER_WEIGHTS``)
    when ``model`` has HYPERNET parameters, else every weight in both loops."""
    return OTHER_WEIGHTS[other_weights] if model.params_by_role()[ParamRole.HYPERNET] else PLAIN_ROLES


def inner_roles_of(model: MetaModel, cfg: MamlConfig) -> tuple[str, ...]:
    """The roles ``cfg`` adapts in the inner loop of ``model`` (its own, else the default)."""
    return cfg.inner_roles or default_roles(model, cfg.other_weights)[0]


def role_names(model: MetaModel, cfg: MamlConfig) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """(inner parameter names, outer parameter names) for ``model`` under ``cfg``; checks that
    a per-role ``cfg.inner_lr`` names exactly the inner roles."""
    inner_roles, outer_roles = default_roles(model, cfg.other_weights)
    groups = model.params_by_role()
    if isinstance(cfg.inner_lr, Mapping):
        check_lr_roles(cfg.inner_lr, cfg.inner_roles or inner_roles)

    def names(roles: tuple[str, ...]) -> tuple[str, ...]:
        wanted = {ParamRole.parse(r) for r in roles}
        return tuple(n for role, group in groups.items() if role in wanted for n in group)

    inner = names(cfg.inner_roles or inner_roles)
    if not inner:
        raise ValueError(
            f"MamlConfig.inner_roles {cfg.inner_roles or inner_roles} select no parameter of {type(model).__name__}"
        )
    return inner, names(cfg.outer_roles or outer_roles)


def inner_lrs(model: MetaModel, cfg: MamlConfig) -> LearningRate:
    """``cfg.inner_lr`` as the inner loop takes it: the number, or parameter name -> lr."""
    inner = set(role_names(model, cfg)[0])
    if not isinstance(cfg.inner_lr, Mapping):
        return cfg.inner_lr
    groups = model.params_by_role()
    return {n: cfg.inner_lr[role.value] for role, group in groups.items() for n in group if n in inner}


def outer_parameters(model: MetaModel, cfg: MamlConfig) -> list[torch.nn.Parameter]:
    """The parameters the outer optimiser must update (outer roles only)."""
    named = dict(model.named_parameters())
    return [named[n] for n in role_names(model, cfg)[1]]


def task_run(model: MetaModel, cfg: MamlConfig, steps: int, outer_grads: bool) -> TaskRun:
    """Starting dicts: see the module docstring; ``outer_grads=False`` detaches everything."""
    inner, outer = role_names(model, cfg)
    live = set(outer) if outer_grads else set()
    named = dict(model.named_parameters())
    fast = {n: named[n] if n in live else named[n].detach().requires_grad_() for n in inner}
    frozen = {n: p.detach() for n, p in named.items() if n not in fast and n not in live}
    return TaskRun(fast, frozen, steps, inner_lrs(model, cfg), cfg.first_order)


def check_batch(batch: TaskBatch) -> None:
    """Raise a ValueError naming the field when ``batch`` is not a float TaskBatch of T tasks."""
    tasks = batch.support_x.shape[0]
    for name in ("support_x", "query_x"):
        x = getattr(batch, name)
        if x.dim() != 5 or not x.is_floating_point():
            raise ValueError(
                f"batch.{name} must be float [T, N, C, H, W] (apply the transform first), got {x.dtype} {tuple(x.shape)}"
            )
    for name, like in (("support_y", batch.support_x), ("query_y", batch.query_x)):
        y = getattr(batch, name)
        if y.shape != like.shape[:2] or y.dtype != torch.int64:
            expected = tuple(like.shape[:2])
            raise ValueError(f"batch.{name} must be int64 of shape {expected}, got {y.dtype} {tuple(y.shape)}")
    if batch.query_x.shape[0] != tasks:
        raise ValueError(f"batch.query_x holds {batch.query_x.shape[0]} tasks but batch.support_x holds {tasks}")


def meta_forward(
    model: MetaModel,
    batch: TaskBatch,
    cfg: MamlConfig,
    *,
    backward: bool = False,
    track_movement: bool = False,
) -> MetaOutput:
    """Adapt to every task of ``batch`` (``cfg.inner_steps`` steps) and score its queries.

    ``backward=True`` also accumulates the meta-gradient into the outer parameters' ``.grad``
    (the loop backend does it task by task, holding one task's graph at a time) and returns a
    loss without a graph. ``track_movement`` fills ``MetaOutput.movement`` (see
    ``metrics.inner_movement``).
    """
    check_batch(batch)
    run = task_run(model, cfg, cfg.inner_steps, outer_grads=True)
    backend = resolve_backend(cfg.backend, batch.support_x.device.type)
    results = run_tasks(model, run, batch, backend, accumulate=backward, keep_adapted=track_movement)
    movement = inner_movement(model, run.fast, results.adapted) if track_movement else {}
    return MetaOutput(results.losses.mean(), results.accuracies.mean(), movement)


def meta_loss(model: MetaModel, batch: TaskBatch, cfg: MamlConfig) -> tuple[Tensor, Tensor]:
    """(mean query loss with the outer graph, mean query accuracy) over the tasks of ``batch``."""
    out = meta_forward(model, batch, cfg)
    return out.loss, out.accuracy


def meta_backward(model: MetaModel, batch: TaskBatch, cfg: MamlConfig, *, track_movement: bool = False) -> MetaOutput:
    """``meta_loss(...).backward()`` with the least memory: grads land in the outer params."""
    return meta_forward(model, batch, cfg, backward=True, track_movement=track_movement)


def adapt(model: MetaModel, support_x: Tensor, support_y: Tensor, steps: int, lr: float | Mapping[str, float], *,
          roles: Sequence[str | ParamRole] | None = None, create_graph: bool = True) -> Params:
    """MAML's inner loop for an outer loop of your own: ``steps`` steps of gradient descent at
    ``lr`` on the support set's cross-entropy, on the parameters of ``roles``, starting from the
    model's own parameters (``inner_loop``, as in ``meta_train``). Returns name -> adapted tensor
    for those parameters only; ``forward_with(model, fast, x)`` reads the others from the model.

    support_x: float [S, C, H, W], support_y: int64 [S]. ``roles`` default to the model's inner
    roles (``default_roles``: embeddings and classifier of a hyper model, every weight of a plain
    one); ``lr`` is a number or role -> lr naming exactly those roles. ``create_graph=True`` keeps
    the graph of the inner gradients (second-order MAML), ``False`` gives first-order MAML. A
    loss on the result reaches every parameter of the model (the adapted ones through their
    starting values): the outer optimiser decides what is trained (``outer_parameters(model,
    MamlConfig())`` is the package's role split). Gradients are on even under ``torch.no_grad()``.
    """
    require_meta_model(model, "adapt")
    if not isinstance(create_graph, bool):
        raise TypeError(f"adapt: create_graph must be a bool, got {create_graph!r}")
    try:
        cfg = MamlConfig(inner_roles=roles, inner_steps=steps, inner_lr=lr, first_order=not create_graph)
        names, lrs = role_names(model, cfg)[0], inner_lrs(model, cfg)
    except ValueError as error:
        raise ValueError(f"adapt (roles={roles!r}, lr={lr!r}, steps={steps!r}): {error}") from None
    named = dict(model.named_parameters())
    with torch.enable_grad():
        return inner_loop(model, {n: named[n] for n in names}, support_x, support_y, steps, lrs, create_graph)


@torch.no_grad()
def predict(model: MetaModel, params: Params, support_x: Tensor, query_x: Tensor, bn_mode: str) -> Tensor:
    """Query logits [Q, way] with ``params``; batch norm per ``bn_mode``.

    ``transductive``: statistics of the query batch. ``inductive``: statistics of the support
    set (``support_x`` [S, C, H, W] is prepended and normalises every query), so no query's
    logits depend on another query.
    """
    if bn_mode == "transductive":
        with norm_statistics(model, "batch"):
            return call_with(model, params, query_x)
    if bn_mode == "inductive":
        with norm_statistics(model, "batch", rows=len(support_x)):
            return call_with(model, params, torch.cat([support_x, query_x]))[len(support_x):]
    raise ValueError(f"bn_mode must be one of {BN_MODES}, got {bn_mode!r}")


def adapt_and_predict(model: MetaModel, support_x: Tensor, support_y: Tensor, query_x: Tensor, cfg: MamlConfig,
                      steps: int, bn_mode: str) -> Tensor:
    """Evaluation: adapt ``steps`` steps (first order: no outer graph is needed) on ``cfg``'s inner
    roles on the support set, return query logits [Q, way] (``bn_mode``)."""
    fast = adapt(model, support_x, support_y, steps, cfg.inner_lr, roles=inner_roles_of(model, cfg), create_graph=False)
    return predict(model, {n: p.detach() for n, p in fast.items()}, support_x, query_x, bn_mode)


def adapt_and_predict_tasks(model: MetaModel, support_x: Tensor, support_y: Tensor, query_x: Tensor, cfg: MamlConfig,
                            steps: int, bn_mode: str) -> Tensor:
    """``adapt_and_predict`` of T tasks at once: support_x [T, S, C, H, W], support_y [T, S],
    query_x [T, Q, C, H, W] -> query logits [T, Q, way].

    ``torch.func.vmap`` over the tasks of ``inner_loop_functional`` (first order: no outer graph is
    built) and ``predict``: each layer runs once for all tasks (a conv with per-task kernels
    becomes one grouped conv) with each task's own batch statistics, so per-task Python and
    kernel-launch overhead is paid once per batch. The logits equal the task-by-task ones up to
    rounding (tests/meta/test_maml_eval.py). The evaluate stage uses it with the ``vmap``
    backend only: on CPU it was slower than the loop (benchmarks/RESULTS.md).
    """
    if bn_mode not in BN_MODES:
        raise ValueError(f"bn_mode must be one of {BN_MODES}, got {bn_mode!r}")
    run = task_run(model, cfg, steps, outer_grads=False)
    start = {n: p.detach() for n, p in run.fast.items()}

    def one_task(sx: Tensor, sy: Tensor, qx: Tensor) -> Tensor:
        with norm_statistics(model, "batch"):
            fast = inner_loop_functional(model, start, run.frozen, sx, sy, run.steps, run.lr, first_order=True)
        return predict(model, {**run.frozen, **fast}, sx, qx, bn_mode)

    with torch.no_grad():
        return torch.func.vmap(one_task, randomness="error")(support_x, support_y, query_x)
