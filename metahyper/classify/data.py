"""Held-out test sets for classification on data sets whose own splits hold disjoint classes.

(Batching is ``metahyper.train.supervised.iterate_batches``; the transforms are
``metahyper.data.presets.store_transforms``.)
"""

from __future__ import annotations

import torch
from torch import Tensor

from metahyper.data.stores import ImageStore


def split_holdout(store: ImageStore, per_class: int) -> tuple[ImageStore, ImageStore]:
    """(train, test) stores over the same classes: the first ``per_class`` images of each class
    (in store order) are the test set, the rest the training set. For data sets whose own
    splits hold disjoint classes (synthetic, Omniglot)."""
    counts = store.images_per_class
    if per_class < 1 or int(counts.min()) <= per_class:
        raise ValueError(f"holdout_per_class={per_class} must be >= 1 and below the smallest class "
                         f"size {int(counts.min())} of {store.source or 'the store'}")
    order = torch.argsort(store.labels, stable=True)
    starts = torch.cumsum(counts, 0) - counts
    rank = torch.empty_like(order)
    rank[order] = torch.arange(len(order)) - starts[store.labels[order]]
    held = rank < per_class

    def part(mask: Tensor) -> ImageStore:
        rows = torch.nonzero(mask).flatten()
        images = store.images.view(len(store), -1).index_select(0, rows).view(-1, *store.image_shape)
        return ImageStore(images, store.labels[rows], store.class_names, store.source)

    return part(~held), part(held)
