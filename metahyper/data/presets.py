"""The normalisation and augmentation presets of the pipelines, in one place.

* Episodic pipelines (pretraining, meta-training, evaluation; ``metahyper.pipeline.stages``):
  ``test_transform``/``train_transform`` normalise with fixed statistics, ``(x - 0.5) / 0.25``
  per channel, so every domain of a cross-domain run gets the same input mapping.
* Classification (``metahyper.classify.train``): ``store_transforms`` normalises with the
  training store's own per-channel mean and std (``channel_stats``), as CIFAR recipes do.

Augmentation in both (``normalized``): a zero-pad-``pad`` random crop and a horizontal flip, on
uint8 before the conversion to float (so padding is black, as torchvision's
``RandomCrop(padding=4)``); for handwritten characters, Koch et al.'s random affine distortions,
stroke width, elastic distortions and random erasing, composable (``augment_names``).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor

from metahyper.data import distortions, transforms
from metahyper.data.stores import ImageStore


EPISODIC_MEAN, EPISODIC_STD = 0.5, 0.25  # every channel of every domain in the episodic pipelines
FLOAT_AUGMENTATIONS = {  # name -> step on float images in [0, 1]; defaults are the papers' settings
    "affine": transforms.RandomAffine,  # Koch et al. 2015
    "stroke": distortions.RandomStrokeWidth,  # pen width: strokes 1 pixel wider or narrower
    "elastic": distortions.RandomElastic,  # Simard et al. 2003
    "erase": distortions.RandomErasing,  # Zhong et al. 2020, erased to the background
}
AUGMENTATIONS = ("crop_flip", *FLOAT_AUGMENTATIONS)  # the named augmentations; True means crop_flip


def augment_names(augment: bool | str) -> list[str]:
    """The named augmentations ``augment`` applies, in order: ``False`` none, ``True`` crop_flip,
    else one name of ``AUGMENTATIONS`` or several joined by ``+`` (``"affine+elastic+erase"``:
    applied in the order written, each drawing from the pipeline's one generator). A ValueError
    names the bad value and lists the known names."""
    if isinstance(augment, bool):
        return ["crop_flip"] if augment else []
    names = augment.split("+") if isinstance(augment, str) else []
    unknown = [name for name in names if name not in AUGMENTATIONS]
    if not names or unknown or len(set(names)) != len(names):
        raise ValueError(f"augment must be true, false, or one of {AUGMENTATIONS} or several of them joined by '+' "
                         f"(each once), got {augment!r}")
    return names


def normalized(mean: Sequence[float], std: Sequence[float], augment: bool | str = False,
               pad: int = 4) -> transforms.Compose:
    """uint8 -> augmentation -> float in [0, 1] -> ``(x - mean[c]) / std[c]``. ``augment``
    (``augment_names``): ``crop_flip`` is a zero-pad-``pad`` random crop and a horizontal flip on
    uint8 (natural images), always first; the others (``FLOAT_AUGMENTATIONS``: handwritten
    characters, which a flip would turn into other characters) run on the float images, in the
    order written: Koch et al.'s affine distortions, stroke width, Simard et al.'s elastic
    distortions, Zhong et al.'s random erasing (``metahyper.data.distortions``)."""
    names = augment_names(augment)
    crop_flip = [transforms.RandomPadCrop(pad), transforms.RandomHFlip()] if "crop_flip" in names else []
    steps = [FLOAT_AUGMENTATIONS[name]() for name in names if name != "crop_flip"]
    return transforms.Compose([*crop_flip, transforms.ToFloat(), *steps, transforms.Normalize(mean, std)])


def denormalized(channels: int, augment: str) -> transforms.Compose:
    """The float augmentations of ``augment`` on images already normalised as ``test_transform``
    does: undo ``(x - 0.5) / 0.25``, augment in [0, 1], normalise again (test-time augmentation of
    evaluation images, which arrive normalised). ``crop_flip`` is refused: it works on uint8."""
    names = augment_names(augment)
    if "crop_flip" in names:
        raise ValueError(f"augment {augment!r}: crop_flip works on uint8 images; test-time augmentation takes "
                         f"{tuple(FLOAT_AUGMENTATIONS)}")
    mean, std = [EPISODIC_MEAN] * channels, [EPISODIC_STD] * channels
    unnormalize = transforms.Normalize([-m / s for m, s in zip(mean, std)], [1 / s for s in std])
    return transforms.Compose([unnormalize, *(FLOAT_AUGMENTATIONS[name]() for name in names),
                               transforms.Normalize(mean, std)])


def test_transform(channels: int) -> transforms.Compose:
    """Episodic pipelines: uint8 -> float in [0, 1] -> per channel (x - 0.5) / 0.25."""
    return normalized([EPISODIC_MEAN] * channels, [EPISODIC_STD] * channels)


def train_transform(channels: int, augment: bool | str) -> transforms.Compose:
    """``test_transform`` with the augmentation ``augment`` (``normalized``)."""
    return normalized([EPISODIC_MEAN] * channels, [EPISODIC_STD] * channels, augment)


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
