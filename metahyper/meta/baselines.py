"""Few-shot baselines without meta-learning: a frozen pretrained backbone plus a per-task head.

Each factory returns a ``metahyper.eval.evaluate.Predictor`` for ``evaluate``, so baselines are
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
  penalised, C = 1), solved here in torch (float64, L-BFGS with strong-Wolfe line search).

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

from metahyper.eval.evaluate import Predictor
from metahyper.meta.inner import check_inner_args
from metahyper.meta.maml import BN_MODES
from metahyper.models.norm import norm_statistics
from metahyper.models.roles import MetaModel

FEATURE_BN_MODES = ("running", *BN_MODES)
METRICS = ("euclidean", "cosine")
Head = Callable[[Tensor, Tensor, Tensor, int], Tensor]  # (support f, support y, query f, way) -> logits


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
def extract_features(model: MetaModel, support_x: Tensor, query_x: Tensor,
                     bn_mode: str = "running") -> tuple[Tensor, Tensor]:
    """Features of support_x [S, C, H, W] and query_x [Q, C, H, W]: ([S, F], [Q, F]).

    ``bn_mode`` is one of ``FEATURE_BN_MODES`` (module docstring). No graph is built and the
    model's running statistics and training flags are left as they were.
    """
    if bn_mode == "running":
        with _eval_mode(model):
            return model.features(support_x), model.features(query_x)
    if bn_mode == "transductive":
        with norm_statistics(model, "batch"):
            return model.features(support_x), model.features(query_x)
    if bn_mode == "inductive":
        with norm_statistics(model, "batch", rows=len(support_x)):
            features = model.features(torch.cat([support_x, query_x]))
        return features[: len(support_x)], features[len(support_x):]
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


def class_means(features: Tensor, labels: Tensor, way: int) -> Tensor:
    """Mean feature of each class: features [S, F], labels [S] in 0..way-1 -> [way, F]."""
    onehot = F.one_hot(labels, way).to(features.dtype)
    return (onehot.T @ features) / onehot.sum(dim=0)[:, None]


def centroid_logits(support_f: Tensor, support_y: Tensor, query_f: Tensor, way: int,
                    metric: str = "euclidean") -> Tensor:
    """Nearest-centroid logits [Q, way]: ``-||q - c_k||^2`` or ``cos(q, c_k)`` (``metric``)."""
    centroids = class_means(support_f, support_y, way)
    if metric == "euclidean":
        return -(query_f[:, None, :] - centroids[None]).pow(2).sum(dim=-1)
    if metric == "cosine":
        return F.normalize(query_f, dim=-1) @ F.normalize(centroids, dim=-1).T
    raise ValueError(f"metric must be one of {METRICS}, got {metric!r}")


def fit_linear_head(features: Tensor, labels: Tensor, way: int, steps: int = 100, lr: float = 0.01,
                    momentum: float = 0.9, weight_decay: float = 1e-3) -> tuple[Tensor, Tensor]:
    """Chen et al.'s head: (W [way, F], b [way]) after ``steps`` full-batch SGD steps from zero.

    features [S, F], labels [S]; the loss is the mean cross-entropy of ``features @ W.T + b``.
    """
    weight = features.new_zeros(way, features.shape[1], requires_grad=True)
    bias = features.new_zeros(way, requires_grad=True)
    optimizer = torch.optim.SGD([weight, bias], lr=lr, momentum=momentum, weight_decay=weight_decay)
    with torch.enable_grad():
        for _ in range(steps):
            optimizer.zero_grad(set_to_none=True)
            F.cross_entropy(features @ weight.T + bias, labels).backward()
            optimizer.step()
    return weight.detach(), bias.detach()


def logistic_objective(weight: Tensor, bias: Tensor, features: Tensor, labels: Tensor, c: float) -> Tensor:
    """scikit-learn's multinomial objective ``0.5 * ||W||^2 + c * sum_i CE(x_i W^T + b, y_i)``."""
    return 0.5 * weight.pow(2).sum() + c * F.cross_entropy(features @ weight.T + bias, labels, reduction="sum")


def fit_logistic_regression(features: Tensor, labels: Tensor, way: int, c: float = 1.0,
                            max_iter: int = 1000) -> tuple[Tensor, Tensor]:
    """Minimise ``logistic_objective`` by L-BFGS in float64: (W [way, F], b [way]), float64.

    features [S, F], labels [S]. Stops after ``max_iter`` iterations or when the gradient's
    largest entry falls below 1e-9 (the objective is strictly convex in W; b is determined up
    to a constant shift, which changes no probability).
    """
    x = features.detach().to(torch.float64)
    weight = x.new_zeros(way, x.shape[1], requires_grad=True)
    bias = x.new_zeros(way, requires_grad=True)
    optimizer = torch.optim.LBFGS([weight, bias], lr=1.0, max_iter=max_iter, tolerance_grad=1e-9,
                                  tolerance_change=1e-14, history_size=20, line_search_fn="strong_wolfe")

    def closure() -> Tensor:
        optimizer.zero_grad(set_to_none=True)
        loss = logistic_objective(weight, bias, x, labels, c)
        loss.backward()
        return loss

    with torch.enable_grad():
        optimizer.step(closure)
    return weight.detach(), bias.detach()


def linear_head_logits(support_f: Tensor, support_y: Tensor, query_f: Tensor, way: int, **fit_options: float) -> Tensor:
    """Query logits [Q, way] of a ``fit_linear_head`` head trained on the support features."""
    weight, bias = fit_linear_head(support_f, support_y, way, **fit_options)
    return query_f @ weight.T + bias


def logistic_regression_logits(support_f: Tensor, support_y: Tensor, query_f: Tensor, way: int,
                               c: float = 1.0, max_iter: int = 1000) -> Tensor:
    """Tian et al.: L2-normalise the features, fit ``fit_logistic_regression``, query logits [Q, way]."""
    weight, bias = fit_logistic_regression(F.normalize(support_f, dim=-1), support_y, way, c, max_iter)
    return (F.normalize(query_f.to(torch.float64), dim=-1) @ weight.T + bias).to(query_f.dtype)


def feature_predictor(model: MetaModel, head: Head, name: str, bn_mode: str, settings: dict) -> Predictor:
    """A Predictor: ``head(*extract_features(...), way)`` with the support labels in between."""
    if bn_mode not in FEATURE_BN_MODES:
        raise ValueError(f"bn_mode must be one of {FEATURE_BN_MODES}, got {bn_mode!r}")

    def predict(support_x: Tensor, support_y: Tensor, query_x: Tensor) -> Tensor:
        way = support_way(support_y)
        support_f, query_f = extract_features(model, support_x, query_x, bn_mode)
        return head(support_f, support_y, query_f, way)

    return Predictor(predict, name, bn_mode, settings)


def nearest_centroid_predictor(model: MetaModel, metric: str = "euclidean", bn_mode: str = "running") -> Predictor:
    """ProtoNet-style nearest class mean on ``model.features`` (``metric``: euclidean | cosine)."""
    if metric not in METRICS:
        raise ValueError(f"metric must be one of {METRICS}, got {metric!r}")
    return feature_predictor(model, partial(centroid_logits, metric=metric), "nearest_centroid", bn_mode,
                             {"metric": metric})


def linear_head_predictor(model: MetaModel, steps: int = 100, lr: float = 0.01, momentum: float = 0.9,
                          weight_decay: float = 1e-3, bn_mode: str = "running") -> Predictor:
    """Chen et al.'s Baseline: a linear head fitted per task on frozen features (``fit_linear_head``)."""
    check_inner_args(steps, lr)
    if not (momentum >= 0 and weight_decay >= 0):
        raise ValueError(f"momentum and weight_decay must be >= 0, got {momentum!r} and {weight_decay!r}")
    options = {"steps": steps, "lr": lr, "momentum": momentum, "weight_decay": weight_decay}
    return feature_predictor(model, partial(linear_head_logits, **options), "linear_head", bn_mode, options)


def logistic_regression_predictor(model: MetaModel, c: float = 1.0, max_iter: int = 1000,
                                  bn_mode: str = "running") -> Predictor:
    """Tian et al.'s simple baseline: L2-normalised features + logistic regression (``c``, ``max_iter``)."""
    if not c > 0:
        raise ValueError(f"c (inverse regularisation strength) must be > 0, got {c!r}")
    if isinstance(max_iter, bool) or not isinstance(max_iter, int) or max_iter < 1:
        raise ValueError(f"max_iter must be an int >= 1, got {max_iter!r}")
    options = {"c": c, "max_iter": max_iter}
    return feature_predictor(model, partial(logistic_regression_logits, **options), "logistic_regression", bn_mode,
                             options)
