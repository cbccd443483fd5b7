"""Test-time augmentation of the support set: each support image's features averaged over copies.

A feature predictor (protonet, meta_baseline, the baselines of ``metahyper.meta.baselines``)
normally describes a support image by its features f(x). With ``SupportAugment(copies=k,
augment=...)`` it uses the mean of f over the image itself and k augmented copies of it, so a
class prototype (or a baseline's centroid or training point) no longer hangs on one drawing's
exact position, size and pen width: the same augmentations as in training
(``metahyper.data.presets.FLOAT_AUGMENTATIONS``), applied to the already normalised evaluation
images (``presets.denormalized``). The queries are not augmented. Each support image still counts
once, so a method that weighs the support against the queries (soft k-means) is not changed
otherwise.

Determinism: the copies of a task are drawn from a generator keyed on ``seed`` and the bytes of
that task's support images, so the same episode gets the same copies in every evaluation, batch
size, run and model (paired comparisons see identical augmented supports), and nothing depends on
the order in which episodes are scored. Batch norm sees each copy of the support set as the
support batch it would see without augmentation (``bn_mode`` as for the plain features).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import torch
from torch import Tensor

from metahyper.data.presets import denormalized
from metahyper.data.rng import keyed_generator


@dataclass(frozen=True)
class SupportAugment:
    """``copies`` augmented copies of every support image (plus the image itself) under ``augment``
    (names of ``FLOAT_AUGMENTATIONS`` joined by '+'), keyed on ``seed``; errors name the field."""

    copies: int
    augment: str = "affine"
    seed: int = 0

    def __post_init__(self) -> None:
        if isinstance(self.copies, bool) or not isinstance(self.copies, int) or self.copies < 1:
            raise ValueError(f"copies must be an int >= 1 (augmented copies of each support image), "
                             f"got {self.copies!r}")
        try:
            denormalized(1, self.augment)
        except ValueError as error:
            raise ValueError(f"augment: {error}") from None

    def views(self, support_x: Tensor) -> Tensor:
        """One task's normalised support images [S, C, H, W] -> [1 + copies, S, C, H, W]: the images
        themselves, then ``copies`` augmented copies, drawn from the task's own generator."""
        digest = hashlib.sha256(support_x.detach().cpu().contiguous().numpy().tobytes()).hexdigest()
        generator = keyed_generator("support-augment", self.seed, digest)
        augmented = denormalized(support_x.shape[-3], self.augment)(
            support_x.expand(self.copies, *support_x.shape), generator)
        return torch.cat([support_x[None], augmented])
