"""Meta-learning: MAML with role-split loops, supervised pretraining and the meta-training loop.

Pretraining lives in ``metahyper.meta.pretrain`` (``PretrainConfig``, ``pretrain``); it is not
re-exported here, so that the name ``metahyper.meta.pretrain`` stays the module.
"""

from metahyper.meta.inner import forward_with, inner_loop
from metahyper.meta.maml import (
    MamlConfig,
    MetaOutput,
    adapt,
    adapt_and_predict,
    adapt_and_predict_tasks,
    default_roles,
    meta_backward,
    meta_forward,
    meta_loss,
    outer_parameters,
    predict,
)
from metahyper.meta.metrics import inner_movement, norm_grad_ratios, weight_norms
from metahyper.meta.train import MetaTrainConfig, NonFiniteLossError, TaskSampler, meta_train

__all__ = [
    "MamlConfig",
    "MetaOutput",
    "MetaTrainConfig",
    "NonFiniteLossError",
    "TaskSampler",
    "adapt",
    "adapt_and_predict",
    "adapt_and_predict_tasks",
    "default_roles",
    "forward_with",
    "inner_loop",
    "inner_movement",
    "meta_backward",
    "meta_forward",
    "meta_loss",
    "meta_train",
    "norm_grad_ratios",
    "outer_parameters",
    "predict",
    "weight_norms",
]
