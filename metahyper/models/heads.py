"""Cosine-similarity heads: the pretraining head and the learnable temperature of Meta-Baseline.

* ``CosineClassifier``: logits ``s * cos(f, w_k)`` with a learnable scale ``s`` (Chen et al.'s
  Baseline++ head, "A Closer Look at Few-shot Classification", ICLR 2019; Gidaris & Komodakis
  2018), an option of pretraining (``pretrain.head: cosine``, ``metahyper.meta.pretrain``): the
  features then learn to separate classes by angle, the metric Meta-Baseline classifies with.
* ``metric_scale``: the learnable temperature tau of Chen et al.'s Meta-Baseline ("Meta-Baseline:
  Exploring Simple Meta-Learning for Few-Shot Learning", ICCV 2021), which multiplies the cosine
  similarities of the queries to the class centroids. It is a parameter of the model
  (``add_metric_scale``), so it is trained by the outer optimiser, saved in the meta-training
  checkpoint and present at evaluation; ``restore_metric_scale`` adds it to a freshly built model
  before such a checkpoint's state dict is loaded (the model's recipe, ``build_model``, does not
  know it).
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from metahyper.models.roles import MetaModel

METRIC_SCALE = "metric_scale"  # the model attribute holding Meta-Baseline's temperature
INITIAL_SCALE = 10.0  # Chen et al.'s initial temperature (their code's ``temp=10.``) and Baseline++'s scale order


class CosineClassifier(nn.Module):
    """``scale * normalize(x) @ normalize(weight).T``: [B, in_features] -> [B, out_features].

    ``weight`` is initialised as ``nn.Linear``'s; ``scale`` is learnable (init ``scale``). It keeps
    ``in_features``/``out_features``/``weight`` so ``MetaModel.reset_classifier`` can replace it.
    """

    def __init__(self, in_features: int, out_features: int, scale: float = INITIAL_SCALE):
        super().__init__()
        if not scale > 0:
            raise ValueError(f"CosineClassifier scale must be > 0, got {scale!r}")
        self.in_features, self.out_features = in_features, out_features
        self.weight = nn.Parameter(torch.empty(out_features, in_features))
        nn.init.kaiming_uniform_(self.weight, a=math.sqrt(5))
        self.scale = nn.Parameter(torch.tensor(float(scale)))

    def forward(self, x: Tensor) -> Tensor:
        return self.scale * F.normalize(x, dim=-1) @ F.normalize(self.weight, dim=-1).t()

    def extra_repr(self) -> str:
        return f"in_features={self.in_features}, out_features={self.out_features}"


def use_cosine_head(model: MetaModel, num_classes: int) -> None:
    """Replace ``model.classifier`` by a fresh ``CosineClassifier`` with ``num_classes`` outputs."""
    old = model.classifier
    model.classifier = CosineClassifier(old.in_features, num_classes).to(old.weight.device, old.weight.dtype)


def add_metric_scale(model: MetaModel, value: float = INITIAL_SCALE) -> nn.Parameter:
    """The model's learnable temperature, registered as ``model.metric_scale`` (init ``value``)
    unless it is there already (a resumed run keeps its own)."""
    if not hasattr(model, METRIC_SCALE):
        reference = next(model.parameters())
        setattr(model, METRIC_SCALE, nn.Parameter(torch.tensor(float(value), device=reference.device,
                                                                dtype=reference.dtype)))
    return getattr(model, METRIC_SCALE)


def restore_metric_scale(model: MetaModel, state: Mapping[str, Tensor]) -> None:
    """Add ``metric_scale`` to ``model`` when the state dict about to be loaded holds one."""
    if METRIC_SCALE in state:
        add_metric_scale(model)
