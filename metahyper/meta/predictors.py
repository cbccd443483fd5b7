"""Few-shot predictors: a predict function plus what a report says about it.

A *predict function* classifies the queries of ONE task::

    predict(support_x, support_y, query_x) -> logits
    support_x: float [S, C, H, W]   support_y: int64 [S] (labels 0..way-1)
    query_x:   float [Q, C, H, W]   logits:    [Q, way]

A ``Predictor`` wraps one with the method's name, its test-time BN mode and settings.
``metahyper.eval.evaluate`` scores any predictor on fixed episodes; the meta-learning methods
(``metahyper.meta.methods``) and the few-shot baselines (``metahyper.meta.baselines``) build
them. This module lives in ``meta/`` so that ``eval/`` depends on ``meta/`` and never the
other way round.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from torch import Tensor

from metahyper.meta.backend_choice import resolve_backend
from metahyper.meta.inner import check_inner_args
from metahyper.meta.maml import BN_MODES, MamlConfig, adapt_and_predict, adapt_and_predict_tasks, inner_roles_of
from metahyper.models.roles import MetaModel
from metahyper.models.wrap import require_meta_model

PredictFn = Callable[[Tensor, Tensor, Tensor], Tensor]
BatchPredictFn = PredictFn  # the same arguments and result with a leading task dimension
INNER_STEPS_EVAL = 10  # Babu et al.: MAML adapts for 10 steps at test time (5 in training)
BN_MODE = "transductive"  # the test-time BN mode when none is given (metahyper.meta.maml.predict)


@dataclass(frozen=True)
class Predictor:
    """A predict function (see the module docstring) and what a report says about it.

    ``name`` is the method (``"maml"``, ``"nearest_centroid"``, ...); ``bn_mode`` how batch norm
    normalises at test time; ``settings`` the method's hyperparameters (JSON-friendly values).
    ``batch_fn``, when given, classifies T tasks at once (support_x [T, S, C, H, W], support_y
    [T, S], query_x [T, Q, C, H, W] -> logits [T, Q, way]) with the same results as ``fn`` task
    by task; ``evaluate`` then uses it.
    """

    fn: PredictFn
    name: str
    bn_mode: str
    settings: Mapping[str, Any] = field(default_factory=dict)
    batch_fn: BatchPredictFn | None = None

    def __call__(self, support_x: Tensor, support_y: Tensor, query_x: Tensor) -> Tensor:
        return self.fn(support_x, support_y, query_x)

    def metadata(self) -> dict[str, Any]:
        """``{"predictor": name, "bn_mode": bn_mode, **settings}``."""
        return {"predictor": self.name, "bn_mode": self.bn_mode, **self.settings}


def maml_predictor(model: MetaModel, maml_cfg: MamlConfig, steps: int = INNER_STEPS_EVAL, bn_mode: str = BN_MODE,
                   name: str = "maml") -> Predictor:
    """MAML test time: ``steps`` steps on ``maml_cfg``'s inner roles on the support set, then predict.

    ``bn_mode`` is ``"transductive"`` | ``"inductive"`` (see ``metahyper.meta.maml.predict``);
    ``name`` is the method the report names (``anil`` passes its own). The model must sit on
    the evaluation device and its classifier must have ``way`` outputs (pretraining resets it
    so). The model itself is never changed: adaptation works on copies.

    With ``maml_cfg.backend`` ``vmap`` the predictor's ``batch_fn`` adapts all tasks of an
    evaluation batch at once (``adapt_and_predict_tasks``); ``loop``, ``grouped`` and ``auto``
    (unless it resolves to ``vmap`` on the model's device) adapt task by task, which is faster
    on CPU (benchmarks/RESULTS.md: vmap's batching rules add passes over the activations, and
    one task's convolutions are already large enough to hide the per-task overhead that
    batching saves).
    """
    require_meta_model(model, "maml_predictor")
    check_inner_args(steps, maml_cfg.inner_lr)
    if bn_mode not in BN_MODES:
        raise ValueError(f"bn_mode must be one of {BN_MODES}, got {bn_mode!r}")

    def predict(support_x: Tensor, support_y: Tensor, query_x: Tensor) -> Tensor:
        return adapt_and_predict(model, support_x, support_y, query_x, maml_cfg, steps, bn_mode)

    def predict_tasks(support_x: Tensor, support_y: Tensor, query_x: Tensor) -> Tensor:
        return adapt_and_predict_tasks(model, support_x, support_y, query_x, maml_cfg, steps, bn_mode)

    roles = inner_roles_of(model, maml_cfg)
    settings = {"inner_steps": steps, "inner_lr": maml_cfg.inner_lr, "inner_roles": roles}
    batched = resolve_backend(maml_cfg.backend, next(model.parameters()).device.type) == "vmap"
    return Predictor(predict, name, bn_mode, settings, batch_fn=predict_tasks if batched else None)
