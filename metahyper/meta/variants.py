"""The extra rows the evaluate stage reports beside a feature predictor (issue 26).

Each is the same predictor with one evaluation option on, scored on the same fixed episodes, so
the report holds the plain number and each variant's side by side (and pairs them across models):

* ``+tta``: test-time augmentation of the support set (``evaluation.support_augment``,
  ``metahyper.meta.support_augment``): support features averaged over augmented copies; for every
  feature predictor (protonet, meta_baseline and the baselines on the pretrained features);
* ``+soft_kmeans``: Ren et al.'s transductive refinement of the prototypes with the episode's
  queries (``evaluation.soft_kmeans_steps``, ``metahyper.meta.prototypes``); for the predictors
  that classify by prototypes (protonet, meta_baseline, nearest_centroid). Transductive: a
  query's prediction depends on the other queries of its episode, which is why it is a row of its
  own and never replaces the inductive number;
* ``+tta+soft_kmeans``: both.

The rows' names end in the suffix (``conv4-protonet+soft_kmeans``), as do the predictors' names
(the report's method column: ``protonet+soft_kmeans``), and their settings say what was on.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

from metahyper.config import to_dict
from metahyper.meta.baselines import FeatureCache
from metahyper.meta.predictors import Predictor
from metahyper.meta.support_augment import SupportAugment

Build = Callable[..., Predictor]
"""``build(refine_steps=..., features=...)``: the predictor with that many soft k-means steps on
that feature cache."""


@dataclasses.dataclass(frozen=True)
class Caches:
    """One model's feature caches: plain features, and support features averaged over augmented
    copies (None without ``support_augment``). Predictors on one model share them, so a batch's
    features are extracted once per kind."""

    plain: FeatureCache
    augmented: FeatureCache | None

    @classmethod
    def for_model(cls, support_augment: SupportAugment | None) -> "Caches":
        """Fresh caches for one model's predictors."""
        return cls(FeatureCache(), None if support_augment is None else FeatureCache(support_augment))


def labelled(predictor: Predictor, suffix: str, settings: dict[str, Any]) -> Predictor:
    """``predictor`` named ``<name><suffix>`` with ``settings`` added to its own."""
    return dataclasses.replace(predictor, name=f"{predictor.name}{suffix}", settings={**predictor.settings, **settings})


def predictor_rows(name: str, build: Build, caches: Caches, soft_kmeans_steps: int,
                   refines: bool) -> dict[str, Predictor]:
    """Row name -> predictor: ``name`` itself (inductive, no augmentation) and the variants the
    options ask for (module docstring); ``refines``: whether the predictor takes soft k-means steps."""
    rows = {name: build(refine_steps=0, features=caches.plain)}
    augment = caches.augmented.support_augment if caches.augmented is not None else None
    tta = {} if augment is None else {"support_augment": to_dict(augment)}
    if augment is not None:
        rows[f"{name}+tta"] = labelled(build(refine_steps=0, features=caches.augmented), "+tta", tta)
    if soft_kmeans_steps and refines:
        rows[f"{name}+soft_kmeans"] = labelled(build(refine_steps=soft_kmeans_steps, features=caches.plain),
                                               "+soft_kmeans", {})
        if augment is not None:
            refined = build(refine_steps=soft_kmeans_steps, features=caches.augmented)
            rows[f"{name}+tta+soft_kmeans"] = labelled(refined, "+tta+soft_kmeans", tta)
    return rows
