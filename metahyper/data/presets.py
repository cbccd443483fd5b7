"""The normalisation and augmentation presets of the pipelines, in one place.

* Episodic pipelines (pretraining, meta-training, evaluation; ``metahyper.stages``):
  ``test_transform``/``train_transform`` normalise with fixed statistics, ``(x - 0.5) / 0.25``
  per channel, so every domain of a cross-domain run gets the same input mapping.
* Classification (``metahyper.classify.train``): ``store_transforms`` normalises with the
  training store's own per-channel mean and std (``channel_stats``), as CIFAR recipes do.

Augmentation in both (``normalized``): a zero-pad-``pad`` random crop and a horizontal flip, on
uint8 before the conversion to float (so padding is black, as torchvision's
``RandomCrop(padding=4)``); for handwritten characters, Koch et al.'s random affine distortions.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor

from metahyper.data import transforms
from metahyper.data.stores import ImageStore


AUGMENTATIONS = ("crop_flip", "affine")  # the named augmentations; True means crop_flip


def normalized(mean: Sequence[float], std: Sequence[float], augment: bool | str = False,
               pad: int = 4) -> transforms.Compose:
    """uint8 -> augmentation -> float in [0, 1] -> ``(x - mean[c]) / std[c]``. ``augment``:
    ``False`` none; ``True`` or ``"crop_flip"`` a zero-pad-``pad`` random crop and a horizontal
    flip on uint8 (natural images); ``"affine"`` Koch et al.'s random affine distortions on the
    float images (``transforms.RandomAffine``: handwritten characters, which a flip would turn
    into other characters)."""
    if augment not in (False, True, *AUGMENTATIONS):
        raise ValueError(f"augment must be true, false or one of {AUGMENTATIONS}, got {augment!r}")
    crop_flip = [transforms.RandomPadCrop(pad), transforms.RandomHFlip()] if augment in (True, "crop_flip") else []
    affine = [transforms.RandomAffine()] if augment == "affine" else []
    return transforms.Compose([*crop_flip, transforms.ToFloat(), *affine, transforms.Normalize(mean, std)])


def test_transform(channels: int) -> transforms.Compose:
    """Episodic pipelines: uint8 -> float in [0, 1] -> per channel (x - 0.5) / 0.25."""
    return normalized([0.5] * channels, [0.25] * channels)


def train_transform(channels: int, augment: bool | str) -> transforms.Compose:
    """``test_transform`` with the augmentation ``augment`` (``normalized``)."""
    return normalized([0.5] * channels, [0.25] * channels, augment)


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


def store_transforms(train_store: ImageStore, augment: bool, pad: int) -> tuple[transforms.Compose, transforms.Compose]:
    """Classification (train, test) transforms normalised with ``train_store``'s channel
    statistics; the train one augments when ``augment`` (drawing from the generator passed at
    call time), the test one is deterministic."""
    mean, std = channel_stats(train_store.images)
    return normalized(mean, std, augment, pad), normalized(mean, std)
