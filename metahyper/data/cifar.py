"""CIFAR-10/100 python batches (classification) and FC100 (few-shot, CIFAR-100 by superclass).

CIFAR python batches are latin1 pickles of dicts with ``data`` uint8 [N, 3072] (each row is
the 3x32x32 image in CHW order) and labels (``labels`` for CIFAR-10, ``fine_labels`` and
``coarse_labels`` for CIFAR-100); names are in ``batches.meta`` (``label_names``) or ``meta``
(``fine_label_names``). FC100 is read from (a) ``FC100_{train,val,test}.pickle`` (latin1 dict
with ``data`` uint8 [N, 32, 32, 3] and ``labels`` = CIFAR-100 fine ids, the MetaOptNet and
learn2learn files) or (b) ``cifar-100-python/`` with train and test pooled (600 per class),
split by superclass as ``data_splits/fc100.json`` says.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from metahyper.data.sources import (DATASETS, DataFormatError, check_class_counts, read_first_format,
                                    require_array, require_int_list, require_key, safe_load_pickle)
from metahyper.data.splits import canonical_split, split_info
from metahyper.data.stores import ImageStore, store_from_nhwc

SIZE = 32
_CIFAR10_DIR, _CIFAR100_DIR = "cifar-10-batches-py", "cifar-100-python"
_CIFAR10_FILES = {"train": [f"data_batch_{i}" for i in range(1, 6)], "test": ["test_batch"]}


def read_batch(path: Path, label_key: str) -> tuple[np.ndarray, np.ndarray, dict]:
    """One CIFAR python batch -> (data uint8 [N, 3072], labels int64 [N], the raw dict)."""
    batch = safe_load_pickle(path, encoding="latin1")
    data = require_array(require_key(batch, "data", path), path, "data", np.uint8, (None, 3 * SIZE * SIZE))
    labels = require_int_list(require_key(batch, label_key, path), path, label_key, len(data))
    return data, labels, batch


def read_names(path: Path, key: str) -> list[str]:
    """A list of class names from a CIFAR meta file."""
    names = require_key(safe_load_pickle(path, encoding="latin1"), key, path)
    if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
        raise DataFormatError(f"{path}: {key!r} must be a list of class names")
    return names


def _chw_store(data: np.ndarray, labels: np.ndarray, names: list[str], source: str) -> ImageStore:
    """uint8 [N, 3072] CHW rows -> a store of [N, 3, 32, 32] (a reshape, no reordering)."""
    images = torch.from_numpy(np.ascontiguousarray(data)).view(-1, 3, SIZE, SIZE)
    return ImageStore(images, torch.from_numpy(labels), names, source)


def read_cifar(folder: Path, files: list[str], label_key: str, meta: str, names_key: str) -> ImageStore:
    """Concatenates CIFAR batches ``files`` of ``folder`` into one store."""
    names = read_names(folder / meta, names_key)
    parts = [read_batch(folder / f, label_key)[:2] for f in files]
    labels = np.concatenate([p[1] for p in parts])
    for f, (_, lab) in zip(files, parts):
        if len(lab) and (lab.min() < 0 or lab.max() >= len(names)):
            raise DataFormatError(f"{folder / f}: {label_key!r} outside 0..{len(names) - 1}")
    return _chw_store(np.concatenate([p[0] for p in parts]), labels, names, f"{folder.name} {'+'.join(files)}")


def _cifar_formats(subdir: str, files: list[str], meta: str, read):
    """The same files inside ``root/subdir`` or directly in ``root``."""
    return [(f"{subdir}/", [f"{subdir}/{f}" for f in files + [meta]], lambda: read(subdir)),
            ("batches in root", files + [meta], lambda: read("."))]


@DATASETS.register("cifar10")
def load_cifar10(root: Path, split: str, image_size: int | None = None, cache_dir=None) -> ImageStore:
    """CIFAR-10 'train' (data_batch_1..5, 50000 images) or 'test' (test_batch, 10000)."""
    if split not in _CIFAR10_FILES:
        raise ValueError(f"cifar10 split must be 'train' or 'test', got {split!r}")
    files = _CIFAR10_FILES[split]
    formats = _cifar_formats(_CIFAR10_DIR, files, "batches.meta",
                             lambda sub: read_cifar(root / sub, files, "labels", "batches.meta", "label_names"))
    return read_first_format("cifar10", root, formats, image_size, cache_dir, split)


@DATASETS.register("cifar100")
def load_cifar100(root: Path, split: str, image_size: int | None = None, cache_dir=None) -> ImageStore:
    """CIFAR-100 'train' (50000 images) or 'test' (10000), fine labels."""
    if split not in ("train", "test"):
        raise ValueError(f"cifar100 split must be 'train' or 'test', got {split!r}")
    formats = _cifar_formats(_CIFAR100_DIR, [split], "meta",
                             lambda sub: read_cifar(root / sub, [split], "fine_labels", "meta", "fine_label_names"))
    return read_first_format("cifar100", root, formats, image_size, cache_dir, split)


def _select_fine(labels: np.ndarray, fine_ids: list[int]) -> tuple[np.ndarray, np.ndarray]:
    """Rows whose fine label is in ``fine_ids`` and their labels remapped to 0..len-1."""
    remap = np.full(100, -1, dtype=np.int64)
    remap[fine_ids] = np.arange(len(fine_ids))
    rows = np.flatnonzero(remap[labels] >= 0)
    return rows, remap[labels[rows]]


def _fine_counts(labels: np.ndarray, names: list[str]) -> dict[str, int]:
    counts = np.bincount(labels, minlength=len(names))
    return {names[i]: int(n) for i, n in enumerate(counts) if n}


def read_fc100_pickle(path: Path, info: dict, split: str, per_class: int | None) -> ImageStore:
    """An ``FC100_{split}.pickle``; labels must be exactly the split's fine classes."""
    archive = safe_load_pickle(path, encoding="latin1")
    data = require_array(require_key(archive, "data", path), path, "data", np.uint8, (None, SIZE, SIZE, 3))
    labels = require_int_list(require_key(archive, "labels", path), path, "labels", len(data))
    names = info["cifar100_fine_names"]
    if len(labels) and (labels.min() < 0 or labels.max() >= len(names)):
        raise DataFormatError(f"{path}: 'labels' must be CIFAR-100 fine ids 0..99")
    check_class_counts(_fine_counts(labels, names), info[split], per_class, str(path))
    rows, new_labels = _select_fine(labels, info["fine_ids"][split])
    return store_from_nhwc(data[rows], new_labels, info[split], f"fc100 {path.name}")


def read_fc100_cifar(folder: Path, info: dict, split: str, per_class: int | None) -> ImageStore:
    """FC100 split from CIFAR-100's train+test files, checking names and the coarse mapping."""
    names = read_names(folder / "meta", "fine_label_names")
    if names != info["cifar100_fine_names"]:
        raise DataFormatError(f"{folder / 'meta'}: fine_label_names differ from data_splits/fc100.json")
    fine_to_coarse = np.asarray(info["cifar100_fine_to_coarse"])
    datas, labels = [], []
    for name in ("train", "test"):
        data, fine, batch = read_batch(folder / name, "fine_labels")
        coarse = require_int_list(require_key(batch, "coarse_labels", folder / name), folder / name,
                                  "coarse_labels", len(data))
        if len(fine) and (fine.min() < 0 or fine.max() > 99 or np.any(fine_to_coarse[fine] != coarse)):
            raise DataFormatError(f"{folder / name}: fine/coarse labels disagree with the CIFAR-100 mapping")
        datas.append(data)
        labels.append(fine)
    all_labels = np.concatenate(labels)
    rows, new_labels = _select_fine(all_labels, info["fine_ids"][split])
    counts = _fine_counts(all_labels[rows], names)
    check_class_counts(counts, info[split], per_class, f"{folder}/{{train,test}}")
    return _chw_store(np.concatenate(datas)[rows], new_labels, info[split], f"fc100 from {folder.name}")


@DATASETS.register("fc100")
def load_fc100(root: Path, split: str, image_size: int | None = None, cache_dir=None,
               images_per_class: int | None = None) -> ImageStore:
    """One FC100 split from ``root`` (FC100 pickles, else ``cifar-100-python/``).
    images_per_class: the count every class must have (default: 600 from data_splits)."""
    split = canonical_split(split)
    info = split_info("fc100")
    per_class = images_per_class or info["images_per_class"]
    pkl = f"FC100_{split}.pickle"
    cifar = [f"{_CIFAR100_DIR}/{f}" for f in ("train", "test", "meta")]
    formats = [
        ("FC100 pickles", [pkl], lambda: read_fc100_pickle(root / pkl, info, split, per_class)),
        ("CIFAR-100 python", cifar, lambda: read_fc100_cifar(root / _CIFAR100_DIR, info, split, per_class)),
    ]
    return read_first_format("fc100", root, formats, image_size, cache_dir, f"{split}-{per_class}")
