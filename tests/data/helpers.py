"""Helpers for the data-layer tests: writing pickles and CIFAR rows, stores that encode rows."""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
import torch

from metahyper.data import ImageStore


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
