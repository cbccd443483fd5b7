"""Helpers for the data-layer tests: writing pickles and CIFAR rows, stores that encode rows."""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
import torch

from metahyper.data import ImageStore
from metahyper.data.splits import split_info


def dump(path: Path, obj, protocol: int = 4) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(pickle.dumps(obj, protocol=protocol))
    return path


def cifar_rows(hwc: np.ndarray) -> np.ndarray:
    """HWC images -> CIFAR rows: 1024 red values (row-major), then green, then blue."""
    return np.stack([np.concatenate([img[:, :, c].reshape(-1) for c in range(3)]) for img in hwc])


def row_store(counts: list[int], side: int = 2) -> ImageStore:
    """A store whose image i encodes its row i in its first two pixels (hi, lo byte), so tests
    can recover which rows an episode used. counts[k] images of class k, classes interleaved."""
    labels = torch.tensor(np.repeat(np.arange(len(counts)), counts))
    labels = labels[torch.from_numpy(np.random.default_rng(3).permutation(len(labels)))]
    n = len(labels)
    images = torch.zeros(n, 1, side, side, dtype=torch.uint8)
    images[:, 0, 0, 0] = torch.arange(n) // 256
    images[:, 0, 0, 1] = torch.arange(n) % 256
    return ImageStore(images, labels, [f"class{k}" for k in range(len(counts))], "rows")


def decode_rows(images: torch.Tensor) -> torch.Tensor:
    """Inverse of ``row_store``: [..., 1, H, W] -> int64 rows [...]."""
    return images[..., 0, 0, 0].long() * 256 + images[..., 0, 0, 1].long()


def write_miniimagenet_caches(root: Path, per_class: int, splits=("train", "val", "test"), seed: int = 0) -> Path:
    """``mini-imagenet-cache-{train,validation,test}.pkl`` in ``root`` (the learn2learn format):
    every class of each split with ``per_class`` random 84x84 RGB images. Returns ``root``."""
    rng = np.random.default_rng(seed)
    for split in splits:
        wnids = split_info("miniimagenet")[split]
        images = rng.integers(0, 256, (len(wnids) * per_class, 84, 84, 3), dtype=np.uint8)
        class_dict = {w: list(range(k * per_class, (k + 1) * per_class)) for k, w in enumerate(wnids)}
        name = {"val": "validation"}.get(split, split)
        dump(root / f"mini-imagenet-cache-{name}.pkl", {"image_data": images, "class_dict": class_dict})
    return root


def write_fc100_pickles(root: Path, per_class: int, splits=("train", "val", "test"), seed: int = 0) -> Path:
    """``FC100_{train,val,test}.pickle`` in ``root`` (latin1-readable, protocol 2 as the
    originals): every fine class of each split with ``per_class`` random 32x32 RGB images."""
    rng = np.random.default_rng(seed)
    for split in splits:
        fine = np.repeat(split_info("fc100")["fine_ids"][split], per_class)
        data = rng.integers(0, 256, (len(fine), 32, 32, 3), dtype=np.uint8)
        dump(root / f"FC100_{split}.pickle", {"data": data, "labels": fine.tolist()}, protocol=2)
    return root
