"""A user's backbone and data set, registered from outside ``metahyper`` at import time.

* model ``toy_convnet`` (option ``width``, default 16): a plain stem conv, then one stage of two
  [width, width, 3, 3] convs, each followed by batch norm and ReLU, then max-pooling; being
  registered after ``metahyper.models`` was imported, it still gets ``hyper_toy_convnet``,
  ``ha_toy_convnet`` and ``bayes_toy_convnet``;
* data set ``npy_folder``: a folder with ``<split>_images.npy`` (uint8 [N, H, W, C]) and
  ``<split>_labels.npy`` (integers [N]) per split, read with ``allow_pickle=False``;
* method ``toy_protonet``: the built-in trained ProtoNet under the plugin's own name (a user's
  meta-learner registers the same way: a builder taking the meta-training settings).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from torch import nn

from metahyper.data.sources import DATASETS, DataFormatError
from metahyper.data.stores import ImageStore
from metahyper.meta.methods import METHODS, ProtoNet
from metahyper.models import MODELS, Backbone, MetaBatchNorm2d, conv


class ToyConvNet(Backbone):
    """stem conv(in, width) -> BN -> ReLU; stage 0: two blocks conv(width, width) -> BN -> ReLU,
    the second one max-pooled; classifier on the average-pooled width features."""

    def __init__(self, num_classes: int, in_channels: int = 3, width: int = 16):
        def block(pool: bool) -> nn.Sequential:
            layers = [conv(width, width), MetaBatchNorm2d(width), nn.ReLU()]
            return nn.Sequential(*layers, *([nn.MaxPool2d(2)] if pool else []))

        stem = nn.Sequential(conv(in_channels, width), MetaBatchNorm2d(width), nn.ReLU())
        super().__init__(in_channels, stem, [nn.Sequential(block(False), block(True))], nn.Identity(), width,
                         num_classes)


@MODELS.register("toy_convnet")
def toy_convnet(num_classes: int, in_channels: int = 3, width: int = 16) -> ToyConvNet:
    if width < 1:
        raise ValueError(f"toy_convnet option width must be >= 1, got {width}")
    return ToyConvNet(num_classes, in_channels, width)


def _read(path: Path, kind: str) -> np.ndarray:
    if not path.is_file():
        raise DataFormatError(f"{path}: missing (npy_folder needs <split>_images.npy and <split>_labels.npy)")
    array = np.load(path, allow_pickle=False)
    if kind == "images" and (array.dtype != np.uint8 or array.ndim != 4):
        raise DataFormatError(f"{path}: expected uint8 images [N, H, W, C], got {array.dtype} {array.shape}")
    if kind == "labels" and (array.dtype.kind not in "iu" or array.ndim != 1):
        raise DataFormatError(f"{path}: expected integer labels [N], got {array.dtype} {array.shape}")
    return array


@DATASETS.register("npy_folder")
def load_npy_folder(root: Path, split: str = "train", image_size: int | None = None,
                    cache_dir=None) -> ImageStore:
    """``load_store('npy_folder', root, split)``: the split's arrays as a store (cache_dir unused)."""
    images, labels = _read(root / f"{split}_images.npy", "images"), _read(root / f"{split}_labels.npy", "labels")
    if len(images) != len(labels):
        raise DataFormatError(f"{root}: {split}_images.npy has {len(images)} images, {split}_labels.npy "
                              f"{len(labels)} labels")
    names = [f"{split}-{k}" for k in range(int(labels.max()) + 1)]
    store = ImageStore.from_arrays(images, labels, names, channels_last=True, source=f"npy_folder {root} {split}")
    return store if image_size is None else store.resized(image_size)


@METHODS.register("toy_protonet")
def toy_protonet(settings: object) -> ProtoNet:
    return ProtoNet(name="toy_protonet")


def register_narrow() -> None:
    """An entry point's callable form (``plugin_pkg.toy:register_narrow``): registers
    ``toy_convnet8``, the toy backbone at width 8, when called."""
    MODELS.register("toy_convnet8")(lambda num_classes, in_channels=3: ToyConvNet(num_classes, in_channels, 8))
