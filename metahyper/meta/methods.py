"""Meta-learning methods: what meta-training updates, one meta-training step, and the test-time predictor.

A method (``Method``) is built by name from the meta-training config (``make_method``); its
settings keep their home in that config (``meta_train.maml`` for ``maml`` and ``anil``). It knows

* ``outer_parameters(model)``: the parameters the outer optimiser updates;
* ``step(model, batch)``: the mean query loss and accuracy of one float ``TaskBatch``, with the
  loss's gradient accumulated into the outer parameters' ``.grad`` (``MetaOutput``);
* ``predictor(model, inner_steps_eval, bn_mode)``: the ``Predictor`` that evaluates it;
* ``prepare(model)`` (optional): adds the method's own parameters to the model before
  meta-training (Meta-Baseline's temperature);
* ``way_agnostic`` (optional; False when absent): whether that predictor classifies tasks of any
  way, so a run may evaluate at another way than it trains with (``episodes.eval_way``). MAML and
  ANIL adapt a head of ``way`` outputs and are not; ProtoNet's prototypes are.

Registered methods (``METHODS``; ``METHODS.register(name)`` adds one, its builder called with the
meta-training config):

* ``maml``: MAML with role-split inner and outer loops (``metahyper.meta.maml``), first or second
  order, any backend (loop, vmap, grouped, auto), per-role inner learning rates;
* ``anil``: Raghu et al.'s "almost no inner loop" (2020): MAML whose inner loop adapts the
  classifier only (``inner_roles: [classifier]``); the outer roles stay MAML's;
* ``protonet``: Snell et al.'s prototypical networks (2017), trained episodically: the logits of a
  query are minus its squared Euclidean distances to the class means of the support features
  (``model.features``), and the loss is their cross-entropy. Every non-classifier parameter is
  trained (the prototypes replace the head); batch norm uses each task's support batch and
  query batch statistics, as the ``transductive`` evaluation does;
* ``meta_baseline``: Chen et al.'s Meta-Baseline ("Meta-Baseline: Exploring Simple Meta-Learning
  for Few-Shot Learning", ICCV 2021): the same episodic training from a model pretrained as a
  classifier on all training classes (their Classifier-Baseline; ``pretrain.head: cosine`` gives
  it a cosine head, ``metahyper.models.heads``), with the logits ``tau * cos(f(q), c_k)``: cosine
  similarity of each query's features to the class centroids (means of the support features),
  times a learnable temperature tau (init 10) that the outer optimiser trains with the features
  (``prepare`` registers it on the model as ``metric_scale``). Way-agnostic, like protonet.

The prototype methods (protonet, meta_baseline) have ``prototypes``: their predictor takes
``refine_steps``, Ren et al.'s soft k-means refinement of the prototypes with the queries
(``metahyper.meta.prototypes``), which the evaluate stage reports as a row of its own.
"""

from __future__ import annotations

import dataclasses
from functools import partial
from typing import ClassVar, Protocol

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from metahyper.data.episodes import TaskBatch
from metahyper.meta.baselines import FeatureCache, feature_predictor, support_way
from metahyper.meta.maml import MamlConfig, MetaOutput, check_batch, meta_backward, outer_parameters
from metahyper.meta.predictors import Predictor, maml_predictor
from metahyper.meta.prototypes import centroid_logits, check_refine_steps
from metahyper.models.heads import METRIC_SCALE, add_metric_scale
from metahyper.models.norm import norm_statistics
from metahyper.models.roles import MetaModel, ParamRole
from metahyper.registry import Registry

ANIL_ROLES = ("classifier",)


class Method(Protocol):
    """A meta-learner (module docstring)."""

    name: str

    def outer_parameters(self, model: MetaModel) -> list[nn.Parameter]: ...

    def step(self, model: MetaModel, batch: TaskBatch, *, track_movement: bool = False) -> MetaOutput: ...

    def predictor(self, model: MetaModel, inner_steps_eval: int, bn_mode: str) -> Predictor: ...


class Settings(Protocol):
    """What a method's builder reads: the meta-training config (``metahyper.meta.train``)."""

    maml: MamlConfig


METHODS: Registry[Method] = Registry("method")


def make_method(name: str, settings: Settings) -> Method:
    """The method ``name`` with its settings from ``settings``; a ValueError names the known methods
    or the setting that does not fit the method."""
    if name not in METHODS:
        raise ValueError(METHODS.unknown(name))
    return METHODS.build(name, settings=settings)


@dataclasses.dataclass(frozen=True)
class Maml:
    """MAML under ``cfg`` (``metahyper.meta.maml``); ``name`` is what reports call it."""

    cfg: MamlConfig
    name: str = "maml"
    way_agnostic: ClassVar[bool] = False  # the head has `way` outputs

    def outer_parameters(self, model: MetaModel) -> list[nn.Parameter]:
        return outer_parameters(model, self.cfg)

    def step(self, model: MetaModel, batch: TaskBatch, *, track_movement: bool = False) -> MetaOutput:
        return meta_backward(model, batch, self.cfg, track_movement=track_movement)

    def predictor(self, model: MetaModel, inner_steps_eval: int, bn_mode: str) -> Predictor:
        return maml_predictor(model, self.cfg, inner_steps_eval, bn_mode, name=self.name)


@METHODS.register("maml")
def _maml(settings: Settings) -> Maml:
    return Maml(settings.maml)


def anil_config(cfg: MamlConfig) -> MamlConfig:
    """``cfg`` with the inner loop on the classifier only; refuses other ``inner_roles``."""
    if cfg.inner_roles not in (None, ANIL_ROLES):
        raise ValueError(f"method anil adapts the classifier only: meta_train.maml.inner_roles must be unset or "
                         f"{list(ANIL_ROLES)}, got {list(cfg.inner_roles)}")
    return dataclasses.replace(cfg, inner_roles=ANIL_ROLES)


@METHODS.register("anil")
def _anil(settings: Settings) -> Maml:
    return Maml(anil_config(settings.maml), "anil")


def prototype_logits(model: MetaModel, support_x: Tensor, support_y: Tensor, query_x: Tensor,
                     metric: str = "euclidean", scale: Tensor | float = 1.0) -> Tensor:
    """One task's query logits [Q, way]: ``centroid_logits`` of the query features against the class
    means of the support features under ``metric`` (times ``scale``), batch norm on each batch's
    own statistics."""
    with norm_statistics(model, "batch"):
        support_f, query_f = model.features(support_x), model.features(query_x)
    return centroid_logits(support_f, support_y, query_f, support_way(support_y), metric, scale)


@dataclasses.dataclass(frozen=True)
class ProtoNet:
    """Prototypical networks (module docstring)."""

    name: str = "protonet"
    metric: ClassVar[str] = "euclidean"
    way_agnostic: ClassVar[bool] = True  # prototypes of however many classes the support holds
    prototypes: ClassVar[bool] = True  # classifies by prototypes: its predictor takes refine_steps and features

    def prepare(self, model: MetaModel) -> None:
        """Add the method's own parameters to ``model`` before meta-training (ProtoNet has none)."""

    def scale(self, model: MetaModel) -> Tensor | float:
        """The factor of the logits (1: plain distances)."""
        return 1.0

    def outer_parameters(self, model: MetaModel) -> list[nn.Parameter]:
        classifier = model.params_by_role()[ParamRole.CLASSIFIER]
        return [p for n, p in model.named_parameters() if p.requires_grad and n not in classifier]

    def step(self, model: MetaModel, batch: TaskBatch, *, track_movement: bool = False) -> MetaOutput:
        """Mean prototype loss over the tasks; each task's share is backpropagated at once, so one
        task's graph is held at a time. No inner loop: ``movement`` stays empty."""
        check_batch(batch)
        tasks, losses, accuracies = len(batch.support_x), [], []
        for sx, sy, qx, qy in zip(batch.support_x, batch.support_y, batch.query_x, batch.query_y):
            logits = prototype_logits(model, sx, sy, qx, self.metric, self.scale(model))
            loss = F.cross_entropy(logits, qy)
            (loss / tasks).backward()
            losses.append(loss.detach())
            accuracies.append((logits.detach().argmax(dim=-1) == qy).float().mean())
        return MetaOutput(torch.stack(losses).mean(), torch.stack(accuracies).mean())

    def predictor(self, model: MetaModel, inner_steps_eval: int, bn_mode: str, *, refine_steps: int = 0,
                  features: FeatureCache | None = None) -> Predictor:
        """The same prototypes on the meta-trained features (``inner_steps_eval`` does not apply:
        there is no inner loop); ``refine_steps`` > 0 refines them with the queries (Ren et al.'s
        soft k-means, ``metahyper.meta.prototypes``); ``features``: a shared ``FeatureCache``."""
        check_refine_steps(refine_steps)
        scale = self.scale(model)
        scale = scale.detach() if isinstance(scale, Tensor) else scale  # evaluation builds no graph
        head = partial(centroid_logits, metric=self.metric, scale=scale, refine_steps=refine_steps)
        settings = {"metric": self.metric, **({"refine_steps": refine_steps} if refine_steps else {})}
        return feature_predictor(model, head, self.name, bn_mode, settings, features)


@METHODS.register("protonet")
def _protonet(settings: Settings) -> ProtoNet:
    return ProtoNet()


@dataclasses.dataclass(frozen=True)
class MetaBaseline(ProtoNet):
    """Chen et al.'s Meta-Baseline (module docstring): ProtoNet's episodes and outer loop with
    cosine similarity to the centroids times the model's learnable temperature."""

    name: str = "meta_baseline"
    metric: ClassVar[str] = "cosine"

    def prepare(self, model: MetaModel) -> None:
        """Register the temperature tau on ``model`` (init 10, Chen et al.), trained with the rest."""
        add_metric_scale(model)

    def scale(self, model: MetaModel) -> Tensor | float:
        if not hasattr(model, METRIC_SCALE):
            raise ValueError("meta_baseline needs the model's temperature (metric_scale): call prepare(model) first, "
                             "or load a meta_baseline checkpoint with metahyper.models.heads.restore_metric_scale")
        return getattr(model, METRIC_SCALE)


@METHODS.register("meta_baseline")
def _meta_baseline(settings: Settings) -> MetaBaseline:
    return MetaBaseline()
