"""Meta-learning: MAML with role-split loops, supervised pretraining and the meta-training loop.

Pretraining lives in ``metahyper.meta.pretrain`` (``PretrainConfig``, ``pretrain``); it is not
re-exported here, so that the name ``metahyper.meta.pretrain`` stays the module. The names below are
imported on first use (``metahyper.lazy``): ``metahyper.meta.metrics_log`` alone loads no torch.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from metahyper.lazy import lazy_attributes

_EXPORTS = {
    "metahyper.meta.inner": ("forward_with", "inner_loop"),
    "metahyper.meta.maml": ("MamlConfig", "MetaOutput", "adapt", "adapt_and_predict", "adapt_and_predict_tasks",
                            "default_roles", "meta_backward", "meta_forward", "meta_loss", "outer_parameters",
                            "predict"),
    "metahyper.meta.metrics": ("inner_movement", "norm_grad_ratios", "weight_norms"),
    "metahyper.meta.train": ("MetaTrainConfig", "NonFiniteLossError", "TaskSampler", "meta_train"),
}
__getattr__, __dir__ = lazy_attributes(__name__, _EXPORTS)
__all__ = sorted(name for names in _EXPORTS.values() for name in names)

if TYPE_CHECKING:  # what type checkers and IDEs see
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
