"""Batches and transforms for classification training on an in-memory ``ImageStore``.

Images stay uint8 on the CPU; each mini-batch is gathered with one ``index_select`` on the flat
[N, C*H*W] view (docs/architecture.md section 8), moved to the device, augmented there (pad-and-crop and
flip on uint8, so padding is black as in torchvision's ``RandomCrop(padding=4)``), converted to
float and normalised with the training store's per-channel mean and std.
"""

from __future__ import annotations

from collections.abc import Iterator

import torch
from torch import Tensor

from metahyper.data import transforms
from metahyper.data.stores import ImageStore


def channel_stats(images: Tensor, chunk: int = 1024) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """Per-channel mean and (population) std of uint8 images [N, C, H, W], in [0, 1] units.

    Summed in float64 over chunks of ``chunk`` images, so memory stays small for CIFAR-size stores.
    """
    if images.dtype != torch.uint8 or images.dim() != 4 or len(images) == 0:
        raise ValueError(f"channel_stats needs non-empty uint8 [N, C, H, W] images, got {images.dtype} {tuple(images.shape)}")
    total = torch.zeros(images.shape[1], dtype=torch.float64)
    squares = torch.zeros_like(total)
    for start in range(0, len(images), chunk):
        x = images[start : start + chunk].to(torch.float64).div_(255.0)
        total += x.sum(dim=(0, 2, 3))
        squares += x.square().sum(dim=(0, 2, 3))
    count = images.shape[0] * images.shape[2] * images.shape[3]
    mean = total / count
    std = (squares / count - mean.square()).clamp_min(1e-12).sqrt()
    return tuple(mean.tolist()), tuple(std.tolist())


def make_transforms(train_store: ImageStore, augment: bool, pad: int) -> tuple[transforms.Compose, transforms.Compose]:
    """(train, test) transforms: uint8 [B, C, H, W] on any device -> normalised float.

    Train: random pad-``pad`` crop and horizontal flip (when ``augment``), drawn from the
    generator passed at call time; test: deterministic. Both normalise with the train store's
    channel statistics.
    """
    mean, std = channel_stats(train_store.images)
    tail = [transforms.ToFloat(), transforms.Normalize(mean, std)]
    augmentation = [transforms.RandomPadCrop(pad), transforms.RandomHFlip()] if augment else []
    return transforms.Compose(augmentation + tail), transforms.Compose(tail)


def iterate_batches(store: ImageStore, order: Tensor, batch_size: int,
                    device: torch.device) -> Iterator[tuple[Tensor, Tensor]]:
    """Yield (uint8 images [b, C, H, W], int64 labels [b]) on ``device`` for consecutive
    chunks of ``order`` (int64 row indices [M]); the last batch may be smaller."""
    flat = store.images.view(len(store), -1)
    for idx in order.split(batch_size):
        x = flat.index_select(0, idx.to(flat.device)).view(len(idx), *store.image_shape)
        yield x.to(device, non_blocking=True), store.labels[idx].to(device, non_blocking=True)


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
