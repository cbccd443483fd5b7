"""Few-shot baselines without meta-learning: a frozen pretrained backbone plus a per-task head.

Each factory returns a ``metahyper.meta.predictors.Predictor`` for ``metahyper.eval.evaluate``, so baselines are
scored on the same fixed episodes as MAML:

* ``nearest_centroid_predictor``: ProtoNet-style (Snell et al.) nearest class mean of the support
  features; logits are minus squared Euclidean distances or cosine similarities.
* ``linear_head_predictor``: Chen et al.'s *Baseline* ("A Closer Look at Few-shot
  Classification", 2019): a new linear layer trained on the support features with SGD
  (momentum 0.9, weight decay 1e-3, lr 0.01), the backbone frozen. Here the steps are full
  batch and the head starts at zero instead of a random init, so results need no RNG (the
  loss is convex in the head, so the start matters little).
* ``logistic_regression_predictor``: Tian et al.'s simple baseline ("Rethinking Few-Shot Image
  Classification", 2020): L2-normalised features and multinomial logistic regression with
  scikit-learn's objective ``0.5 * ||W||^2 + C * sum_i cross_entropy_i`` (intercept not
  penalised, C = 1), solved here in torch by a batched float32 L-BFGS (``lbfgs``): its
  per-task optimum matches scipy's float64 one to ~1e-5 (tests/meta/test_baselines.py).

Every head takes stacked tasks (features [T, S, F], labels [T, S], queries [T, Q, F]) or one task
([S, F], ...), and each predictor's ``batch_fn`` fits all tasks of an evaluation batch in one
call: per-task Python overhead, not arithmetic, dominated these small fits.

Extracting the features costs more than fitting these heads, so baselines on one model can share
them: give their factories one ``FeatureCache`` and evaluate them on the same batches
(``metahyper.eval.evaluate.evaluate_all``); each batch's features are then extracted once.

Batch norm during feature extraction (``bn_mode``): ``"running"`` (default) puts the model in
eval mode, so every image is normalised with the running statistics of pretraining (MAML's
meta-training keeps no running statistics, so these are pretraining's) and each query is
classified independently. ``"transductive"`` and ``"inductive"`` mean what they mean for MAML
(``metahyper.meta.maml.predict``): batch statistics of the queries, or of the support set.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from functools import partial

import torch
import torch.nn.functional as F
from torch import Tensor

from metahyper.meta.inner import check_inner_args
from metahyper.meta.maml import BN_MODES
from metahyper.meta.predictors import Predictor
from metahyper.meta.prototypes import METRICS, centroid_logits, check_refine_steps
from metahyper.meta.support_augment import SupportAugment
from metahyper.models.norm import norm_statistics
from metahyper.models.roles import MetaModel

FEATURE_BN_MODES = ("running", *BN_MODES)
Head = Callable[[Tensor, Tensor, Tensor, int], Tensor]  # ([T, S, F], [T, S], [T, Q, F], way) -> logits [T, Q, way]


@contextmanager
def _eval_mode(model: MetaModel) -> Iterator[None]:
    """``model.eval()`` inside the block; every submodule's training flag is restored after."""
    flags = [(m, m.training) for m in model.modules()]
    model.eval()
    try:
        yield
    finally:
        for m, flag in flags:
            m.training = flag


@torch.no_grad()
def extract_features(model: MetaModel, support_x: Tensor, query_x: Tensor, bn_mode: str = "running",
                     augment: SupportAugment | None = None) -> tuple[Tensor, Tensor]:
    """Features of support_x [S, C, H, W] and query_x [Q, C, H, W]: ([S, F], [Q, F]).

    ``bn_mode`` is one of ``FEATURE_BN_MODES`` (module docstring). With ``augment`` each support
    feature is the mean over the image and its augmented copies (``metahyper.meta.support_augment``;
    each copy of the support set is normalised as the support set is). No graph is built and the
    model's running statistics and training flags are left as they were.
    """
    support_f, query_f = _features(model, support_x, query_x, bn_mode)
    if augment is not None:
        copies = augment.views(support_x)[1:]
        support_f = sum((_features(model, view, None, bn_mode)[0] for view in copies), support_f) / (1 + len(copies))
    return support_f, query_f


def _features(model: MetaModel, support_x: Tensor, query_x: Tensor | None,
              bn_mode: str) -> tuple[Tensor, Tensor | None]:
    """``extract_features`` without augmentation; ``query_x`` None: the support's features alone
    (the same as with queries in every mode: inductive statistics come from the support rows)."""
    if bn_mode == "running":
        with _eval_mode(model):
            return model.features(support_x), None if query_x is None else model.features(query_x)
    if bn_mode == "transductive":
        with norm_statistics(model, "batch"):
            return model.features(support_x), None if query_x is None else model.features(query_x)
    if bn_mode == "inductive":
        with norm_statistics(model, "batch", rows=len(support_x)):
            features = model.features(support_x if query_x is None else torch.cat([support_x, query_x]))
        return features[: len(support_x)], None if query_x is None else features[len(support_x):]
    raise ValueError(f"bn_mode must be one of {FEATURE_BN_MODES}, got {bn_mode!r}")


def support_way(support_y: Tensor) -> int:
    """Number of classes of a task whose support labels [S] are 0..way-1, each present."""
    if support_y.dim() != 1 or support_y.dtype != torch.int64 or len(support_y) == 0:
        raise ValueError(f"support_y must be non-empty int64 [S], got {support_y.dtype} {tuple(support_y.shape)}")
    if int(support_y.min()) < 0:
        raise ValueError(f"support_y must hold labels 0..way-1, got {int(support_y.min())}")
    counts = torch.bincount(support_y)
    if bool((counts == 0).any()):
        raise ValueError(f"support_y must hold every label 0..way-1 at least once, got counts {counts.tolist()}")
    return len(counts)


def task_losses(logits: Tensor, labels: Tensor, reduction: str = "mean") -> Tensor:
    """Cross-entropy of each task: logits [..., S, way], labels [..., S] -> [...] (mean or sum over S)."""
    losses = F.cross_entropy(logits.flatten(0, -2), labels.flatten(), reduction="none").view(labels.shape)
    return losses.mean(dim=-1) if reduction == "mean" else losses.sum(dim=-1)


def fit_linear_head(features: Tensor, labels: Tensor, way: int, steps: int = 100, lr: float = 0.01,
                    momentum: float = 0.9, weight_decay: float = 1e-3) -> tuple[Tensor, Tensor]:
    """Chen et al.'s head: (W [..., way, F], b [..., way]) after ``steps`` full-batch SGD steps from zero.

    features [..., S, F], labels [..., S]; each task's loss is the mean cross-entropy of
    ``features @ W.T + b``. Tasks (leading dims) are fitted together: the summed loss gives
    every task its own gradient, and SGD's momentum and weight decay act entry by entry.
    """
    weight = features.new_zeros(*features.shape[:-2], way, features.shape[-1], requires_grad=True)
    bias = features.new_zeros(*features.shape[:-2], way, requires_grad=True)
    optimizer = torch.optim.SGD([weight, bias], lr=lr, momentum=momentum, weight_decay=weight_decay)
    with torch.enable_grad():
        for _ in range(steps):
            optimizer.zero_grad(set_to_none=True)
            task_losses(features @ weight.transpose(-1, -2) + bias[..., None, :], labels).sum().backward()
            optimizer.step()
    return weight.detach(), bias.detach()


def logistic_objective(weight: Tensor, bias: Tensor, features: Tensor, labels: Tensor, c: float) -> Tensor:
    """scikit-learn's multinomial objective ``0.5 * ||W||^2 + c * sum_i CE(x_i W^T + b, y_i)`` per task [...]."""
    logits = features @ weight.transpose(-1, -2) + bias[..., None, :]
    return 0.5 * weight.pow(2).sum(dim=(-1, -2)) + c * task_losses(logits, labels, "sum")


TOLERANCE = {torch.float32: 1e-5, torch.float64: 1e-9}  # largest gradient entry at which L-BFGS stops


def fit_logistic_regression(features: Tensor, labels: Tensor, way: int, c: float = 1.0,
                            max_iter: int = 1000) -> tuple[Tensor, Tensor]:
    """Minimise ``logistic_objective`` of every task by batched L-BFGS: (W [..., way, F], b [..., way]).

    features [..., S, F] (float32 or float64; the solve runs in that dtype), labels [..., S].
    Each task stops after ``max_iter`` iterations, when its gradient's largest entry falls
    below ``TOLERANCE[dtype]``, or when its line search can no longer improve it (the
    objective is strictly convex in W; b is determined up to a constant shift, which changes no
    probability). Tasks are solved independently: a task's result does not depend on the others
    in the batch (up to the rounding of batched matrix products).
    """
    x1 = torch.cat([features, features.new_ones(*features.shape[:-1], 1)], dim=-1)
    x1 = x1.reshape(-1, *x1.shape[-2:])  # [B, S, F + 1]: the tasks, each with a column of ones
    onehot = F.one_hot(labels, way).to(features.dtype).reshape(len(x1), -1, way)
    shape = (len(x1), way, x1.shape[-1])

    def value_and_grad(theta: Tensor) -> tuple[Tensor, Tensor]:
        theta = theta.view(shape)
        log_p = (x1 @ theta.transpose(-1, -2)).log_softmax(dim=-1)
        value = 0.5 * theta[..., :-1].pow(2).sum(dim=(-1, -2)) - c * (onehot * log_p).sum(dim=(-1, -2))
        grad = c * (log_p.exp() - onehot).transpose(-1, -2) @ x1
        grad[..., :-1] += theta[..., :-1]
        return value, grad.flatten(1)

    theta = lbfgs(value_and_grad, x1.new_zeros(shape[0], way * shape[2]), max_iter, TOLERANCE[features.dtype])
    theta = theta.view(*features.shape[:-2], way, shape[2])
    return theta[..., :-1], theta[..., -1]


def linear_head_logits(support_f: Tensor, support_y: Tensor, query_f: Tensor, way: int, **fit_options: float) -> Tensor:
    """Query logits [..., Q, way] of a ``fit_linear_head`` head trained on the support features."""
    weight, bias = fit_linear_head(support_f, support_y, way, **fit_options)
    return query_f @ weight.transpose(-1, -2) + bias[..., None, :]


def logistic_regression_logits(support_f: Tensor, support_y: Tensor, query_f: Tensor, way: int,
                               c: float = 1.0, max_iter: int = 1000, dtype: torch.dtype = torch.float32) -> Tensor:
    """Tian et al.: L2-normalise the features, fit ``fit_logistic_regression`` (in ``dtype``), query
    logits [..., Q, way] in query_f's dtype."""
    weight, bias = fit_logistic_regression(F.normalize(support_f.to(dtype), dim=-1), support_y, way, c, max_iter)
    logits = F.normalize(query_f.to(dtype), dim=-1) @ weight.transpose(-1, -2) + bias[..., None, :]
    return logits.to(query_f.dtype)


def task_features(model: MetaModel, support_x: Tensor, query_x: Tensor, bn_mode: str,
                  augment: SupportAugment | None = None) -> tuple[Tensor, Tensor]:
    """``extract_features`` of every task (support_x [T, S, C, H, W], query_x [T, Q, C, H, W]) ->
    ([T, S, F], [T, Q, F]); batch norm sees one task at a time, as in ``predict``."""
    features = [extract_features(model, sx, qx, bn_mode, augment) for sx, qx in zip(support_x, query_x)]
    support_f, query_f = (torch.stack(f) for f in zip(*features))
    return support_f, query_f


class FeatureCache:
    """``task_features`` of the latest batch, per (model, BN mode): predictors that share one cache
    extract a batch's features once. A batch is recognised by its tensors' identity and version
    counter (an in-place change is a new batch), so the cache holds only while the models'
    weights stay as they are: make one per evaluation. ``support_augment``: every predictor of
    this cache describes the support images by features averaged over augmented copies
    (``metahyper.meta.support_augment``).
    """

    def __init__(self, support_augment: SupportAugment | None = None) -> None:
        self._latest: dict[tuple[int, str], tuple[object, ...]] = {}
        self.support_augment = support_augment

    def __call__(self, model: MetaModel, support_x: Tensor, query_x: Tensor, bn_mode: str) -> tuple[Tensor, Tensor]:
        key, versions = (id(model), bn_mode), (support_x._version, query_x._version)
        latest = self._latest.get(key)  # (model, support_x, query_x, versions, features); model kept alive
        if not (latest and latest[0] is model and latest[1] is support_x and latest[2] is query_x
                and latest[3] == versions):
            features = task_features(model, support_x, query_x, bn_mode, self.support_augment)
            latest = (model, support_x, query_x, versions, features)
            self._latest[key] = latest
        return latest[4]


def feature_predictor(model: MetaModel, head: Head, name: str, bn_mode: str, settings: dict,
                      cache: FeatureCache | None = None) -> Predictor:
    """A Predictor: ``head(*extract_features(...), way)`` with the support labels in between.

    Its ``batch_fn`` extracts each task's features (``task_features``, through ``cache`` when
    given) and fits the heads of all tasks in one batched call.
    """
    if bn_mode not in FEATURE_BN_MODES:
        raise ValueError(f"bn_mode must be one of {FEATURE_BN_MODES}, got {bn_mode!r}")
    if cache is not None and not isinstance(cache, FeatureCache):
        raise TypeError(f"cache must be a FeatureCache or None, got {type(cache).__name__}")
    features = task_features if cache is None else cache

    def predict_tasks(support_x: Tensor, support_y: Tensor, query_x: Tensor) -> Tensor:
        ways = {support_way(y) for y in support_y}
        if len(ways) != 1:
            raise ValueError(f"the tasks of a batch must share one way, got {sorted(ways)}")
        support_f, query_f = features(model, support_x, query_x, bn_mode)
        return head(support_f, support_y, query_f, ways.pop())

    def predict(support_x: Tensor, support_y: Tensor, query_x: Tensor) -> Tensor:
        return predict_tasks(support_x[None], support_y[None], query_x[None])[0]

    return Predictor(predict, name, bn_mode, settings, batch_fn=predict_tasks)


def nearest_centroid_predictor(model: MetaModel, metric: str = "euclidean", bn_mode: str = "running",
                               cache: FeatureCache | None = None, refine_steps: int = 0,
                               scale: float = 1.0) -> Predictor:
    """ProtoNet-style nearest class mean on ``model.features`` (``metric``: euclidean | cosine);
    ``cache``: see ``FeatureCache``; ``refine_steps`` > 0 refines the class means with the queries
    (transductive soft k-means, ``metahyper.meta.prototypes``), its assignment weights the softmax
    of the logits times ``scale`` (a temperature: cosine similarities lie in [-1, 1], so unscaled
    they spread every query over all classes; 10 is Meta-Baseline's initial one). ``scale`` leaves
    the inductive prediction as it is."""
    if metric not in METRICS:
        raise ValueError(f"metric must be one of {METRICS}, got {metric!r}")
    check_refine_steps(refine_steps)
    if not scale > 0:
        raise ValueError(f"scale (a temperature of the logits) must be > 0, got {scale!r}")
    extra = {**({"refine_steps": refine_steps} if refine_steps else {}), **({"scale": scale} if scale != 1 else {})}
    head = partial(centroid_logits, metric=metric, scale=scale, refine_steps=refine_steps)
    return feature_predictor(model, head, "nearest_centroid", bn_mode, {"metric": metric, **extra}, cache)


def linear_head_predictor(model: MetaModel, steps: int = 100, lr: float = 0.01, momentum: float = 0.9,
                          weight_decay: float = 1e-3, bn_mode: str = "running",
                          cache: FeatureCache | None = None) -> Predictor:
    """Chen et al.'s Baseline: a linear head fitted per task on frozen features (``fit_linear_head``)."""
    check_inner_args(steps, lr)
    if not (momentum >= 0 and weight_decay >= 0):
        raise ValueError(f"momentum and weight_decay must be >= 0, got {momentum!r} and {weight_decay!r}")
    options = {"steps": steps, "lr": lr, "momentum": momentum, "weight_decay": weight_decay}
    return feature_predictor(model, partial(linear_head_logits, **options), "linear_head", bn_mode, options, cache)


def logistic_regression_predictor(model: MetaModel, c: float = 1.0, max_iter: int = 1000,
                                  bn_mode: str = "running", cache: FeatureCache | None = None) -> Predictor:
    """Tian et al.'s simple baseline: L2-normalised features + logistic regression (``c``, ``max_iter``)."""
    if not c > 0:
        raise ValueError(f"c (inverse regularisation strength) must be > 0, got {c!r}")
    if isinstance(max_iter, bool) or not isinstance(max_iter, int) or max_iter < 1:
        raise ValueError(f"max_iter must be an int >= 1, got {max_iter!r}")
    options = {"c": c, "max_iter": max_iter}
    return feature_predictor(model, partial(logistic_regression_logits, **options), "logistic_regression", bn_mode,
                             options, cache)


def lbfgs(fun: Callable[[Tensor], tuple[Tensor, Tensor]], x0: Tensor, max_iter: int, tol: float,
          history: int = 20) -> Tensor:
    """Minimise B independent smooth convex problems at once: ``fun(x [B, P]) -> (value [B], grad [B, P])``.

    L-BFGS (Nocedal & Wright, Algorithm 7.4: two-loop recursion, ``history`` pairs, initial
    Hessian ``s.y / y.y``); the first step is scaled by ``min(1, 1 / |g|_1)`` as in
    ``torch.optim.LBFGS``. Steps are found by backtracking (``backtrack``). A row stops when its
    gradient's largest entry is at most ``tol`` or its line search fails; stopped rows keep
    their x. Returns x [B, P].
    """
    x = x0.clone()
    value, grad = fun(x)
    pairs: list[tuple[Tensor, Tensor, Tensor]] = []
    gamma = x.new_ones(len(x))
    active = grad.abs().amax(dim=-1) > tol
    for iteration in range(max_iter):
        if not bool(active.any()):
            break
        direction = -two_loop(grad, pairs, gamma)
        step = (grad.abs().sum(dim=-1).reciprocal().clamp(max=1.0) if iteration == 0 else torch.ones_like(value))
        new_x, new_value, new_grad = backtrack(fun, x, value, grad, direction, step * active)
        s, y = new_x - x, new_grad - grad
        sy = (s * y).sum(dim=-1)
        curved = sy > 0
        rho = torch.where(curved, sy.reciprocal(), torch.zeros_like(sy))  # rho 0: the pair is ignored
        gamma = torch.where(curved, sy / (y * y).sum(dim=-1).clamp(min=torch.finfo(sy.dtype).tiny), gamma)
        pairs = [*pairs, (s, y, rho)][-history:]
        active = active & (s != 0).any(dim=-1) & (new_grad.abs().amax(dim=-1) > tol)
        x, value, grad = new_x, new_value, new_grad
    return x


def two_loop(grad: Tensor, pairs: list[tuple[Tensor, Tensor, Tensor]], gamma: Tensor) -> Tensor:
    """L-BFGS's inverse-Hessian estimate times ``grad`` [B, P], row by row (``pairs``: (s, y, rho))."""
    q, alphas = grad.clone(), []
    for s, y, rho in reversed(pairs):
        alpha = rho * (s * q).sum(dim=-1)
        q -= alpha[:, None] * y
        alphas.append(alpha)
    r = gamma[:, None] * q
    for (s, y, rho), alpha in zip(pairs, reversed(alphas)):
        r += s * (alpha - rho * (y * r).sum(dim=-1))[:, None]
    return r


def backtrack(fun: Callable[[Tensor], tuple[Tensor, Tensor]], x: Tensor, value: Tensor, grad: Tensor,
              direction: Tensor, step: Tensor, tries: int = 40) -> tuple[Tensor, Tensor, Tensor]:
    """Halve each row's ``step`` until it gives sufficient decrease; the accepted (x, value, grad).

    Accepts Armijo's condition ``f(t) <= f(0) + 1e-4 t f'(0)``, or Hager & Zhang's approximate
    Wolfe conditions (``f(t) <= f(0) + eps |f(0)|`` and ``f'(t) <= 0.8 |f'(0)|``), which still
    make progress where f's rounding error hides the decrease (float32 near the optimum). A row
    with step 0 (stopped) or no accepted step in ``tries`` halvings keeps its x.
    """
    slope = (grad * direction).sum(dim=-1)
    slack = 100 * torch.finfo(value.dtype).eps * value.abs()
    accepted = step == 0
    out = [x.clone(), value.clone(), grad.clone()]
    for _ in range(tries):
        trial = x + step[:, None] * direction
        trial_value, trial_grad = fun(trial)
        armijo = trial_value <= value + 1e-4 * step * slope
        approx = (trial_value <= value + slack) & ((trial_grad * direction).sum(dim=-1) <= -0.8 * slope)
        ok = ~accepted & (armijo | approx) & (slope < 0)
        for kept, new in zip(out, (trial, trial_value, trial_grad)):
            kept[ok] = new[ok]
        accepted |= ok
        if bool(accepted.all()):
            break
        step = step / 2
    return out[0], out[1], out[2]
