"""Nearest-centroid classification of feature vectors, with optional transductive refinement.

Shared by ProtoNet and Meta-Baseline (``metahyper.meta.methods``) and the nearest-centroid
baseline (``metahyper.meta.baselines``). Tasks may be stacked: support features [..., S, F],
labels [..., S] in 0..way-1, query features [..., Q, F].

* ``class_means``: the prototype of each class, the mean of its support features (Snell et al.);
* ``centroid_scores``: ``-||q - c_k||^2`` (``euclidean``) or ``cos(q, c_k)`` (``cosine``), times
  ``scale`` (Meta-Baseline's learnable temperature; 1 otherwise);
* ``soft_kmeans``: Ren et al.'s refinement of the prototypes with unlabelled points ("Meta-Learning
  for Semi-Supervised Few-Shot Classification", ICLR 2018, their soft k-means, eq. 3): every query
  q_j gets the assignment weights ``z_jk = softmax_k(score(q_j, c_k))`` and each prototype becomes
  ``(sum_{i: y_i = k} s_i + sum_j z_jk q_j) / (n_k + sum_j z_jk)``. Used transductively here, with
  the episode's own queries as the unlabelled points. Nothing ties the queries to the classes
  beyond these weights: no class is made to receive any share of them (each query's weights sum to
  one over the classes, nothing more), so the refinement does not use how many queries each class
  has (Lake's runs have one per class). ``steps`` repeats it from the refined prototypes.
"""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor

METRICS = ("euclidean", "cosine")


def _class_sums(features: Tensor, labels: Tensor, way: int) -> tuple[Tensor, Tensor]:
    """Sum of each class's features [..., way, F] and its count [..., way]."""
    onehot = F.one_hot(labels, way).to(features.dtype)
    return onehot.transpose(-1, -2) @ features, onehot.sum(dim=-2)


def class_means(features: Tensor, labels: Tensor, way: int) -> Tensor:
    """Mean feature of each class: features [..., S, F], labels [..., S] in 0..way-1 -> [..., way, F]."""
    sums, counts = _class_sums(features, labels, way)
    return sums / counts[..., None]


def centroid_scores(centroids: Tensor, query_f: Tensor, metric: str = "euclidean",
                    scale: Tensor | float = 1.0) -> Tensor:
    """Logits [..., Q, way] of queries [..., Q, F] against centroids [..., way, F] under ``metric``."""
    if metric == "euclidean":  # ||q||^2 - 2 q.c + ||c||^2 by one matrix product: no [T, Q, way, F] tensor
        squared = query_f.pow(2).sum(dim=-1)[..., :, None] + centroids.pow(2).sum(dim=-1)[..., None, :]
        return scale * (2 * query_f @ centroids.transpose(-1, -2) - squared)
    if metric == "cosine":
        return scale * (F.normalize(query_f, dim=-1) @ F.normalize(centroids, dim=-1).transpose(-1, -2))
    raise ValueError(f"metric must be one of {METRICS}, got {metric!r}")


def soft_kmeans(support_f: Tensor, support_y: Tensor, query_f: Tensor, way: int, steps: int, metric: str = "euclidean",
                scale: Tensor | float = 1.0) -> Tensor:
    """Ren et al.'s refined prototypes [..., way, F] after ``steps`` soft k-means steps (module docstring)."""
    sums, counts = _class_sums(support_f, support_y, way)
    centroids = sums / counts[..., None]
    for _ in range(steps):
        weights = centroid_scores(centroids, query_f, metric, scale).softmax(dim=-1)  # [..., Q, way]
        centroids = (sums + weights.transpose(-1, -2) @ query_f) / (counts + weights.sum(dim=-2))[..., None]
    return centroids


def check_refine_steps(steps: int) -> None:
    """Refuse a refinement step count that is not an int >= 0, naming it."""
    if isinstance(steps, bool) or not isinstance(steps, int) or steps < 0:
        raise ValueError(f"refine_steps (soft k-means steps; 0: none) must be an int >= 0, got {steps!r}")


def centroid_logits(support_f: Tensor, support_y: Tensor, query_f: Tensor, way: int, metric: str = "euclidean",
                    scale: Tensor | float = 1.0, refine_steps: int = 0) -> Tensor:
    """Nearest-centroid logits [..., Q, way]: ``centroid_scores`` of the queries against the class
    means, or against the ``soft_kmeans`` prototypes after ``refine_steps`` steps (0: inductive)."""
    if metric not in METRICS:
        raise ValueError(f"metric must be one of {METRICS}, got {metric!r}")
    check_refine_steps(refine_steps)
    centroids = soft_kmeans(support_f, support_y, query_f, way, refine_steps, metric, scale)
    return centroid_scores(centroids, query_f, metric, scale)
