"""MiniImageNet readers (Ravi & Larochelle split, 84x84 RGB).

Formats (docs/architecture.md section 5), detected in this order:
(a) ``mini-imagenet-cache-{train,validation,test}.pkl``: a dict with ``image_data`` uint8
    [N, 84, 84, 3] and ``class_dict`` {wnid: [row indices]} (the files learn2learn reads);
(b) ``images/`` plus ``{train,val,test}.csv`` with header ``filename,label`` and rows like
    ``n0153282900000005.jpg,n01532829``; images of any size are resized to 84x84 once.
Classes and their order come from ``data_splits/miniimagenet.json``; label k = k-th wnid.
"""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
from PIL import Image
from tqdm import tqdm

from metahyper.data.bounded import open_image
from metahyper.data.confine import confined
from metahyper.data.sources import (DATASETS, DataFormatError, check_class_counts, read_first_format,
                                    decoding, require_array, require_int_list, require_key, safe_load_pickle)
from metahyper.data.splits import canonical_split, split_info
from metahyper.data.stores import ImageStore, store_from_nhwc

SIZE = 84
_PICKLE_SPLIT = {"train": "train", "val": "validation", "test": "test"}


def read_pickle_cache(path: Path, classes: list[str], per_class: int | None) -> ImageStore:
    """Reads a ``mini-imagenet-cache-*.pkl``. Images keep the file's row order (no copy beyond
    HWC -> CHW); label k marks the rows that ``class_dict`` lists for the k-th class of the split."""
    data = safe_load_pickle(path)
    images = require_array(require_key(data, "image_data", path), path, "image_data", np.uint8, (None, SIZE, SIZE, 3))
    class_dict = require_key(data, "class_dict", path)
    if not isinstance(class_dict, dict):
        raise DataFormatError(f"{path}: 'class_dict' must be a dict {{wnid: [row indices]}}")
    rows = {str(k): require_int_list(v, path, f"class_dict[{k!r}]") for k, v in class_dict.items()}
    check_class_counts({c: len(r) for c, r in rows.items()}, classes, per_class, str(path))
    labels = np.full(len(images), -1, dtype=np.int64)
    for k, wnid in enumerate(classes):
        mine = rows[wnid]
        if len(mine) and (mine.min() < 0 or mine.max() >= len(images)):
            raise DataFormatError(f"{path}: class_dict[{wnid!r}] has rows outside 0..{len(images) - 1}")
        if len(np.unique(mine)) != len(mine) or np.any(labels[mine] >= 0):
            raise DataFormatError(f"{path}: class_dict[{wnid!r}] lists a row twice or a row of another class")
        labels[mine] = k
    keep = np.flatnonzero(labels >= 0)
    selected = images if len(keep) == len(images) else images[keep]
    return store_from_nhwc(selected, labels[keep], classes, f"miniimagenet {path.name}")


def _read_csv_rows(path: Path) -> list[tuple[str, str]]:
    """(filename, wnid) rows of a split CSV, checking the header ``filename,label``."""
    with decoding(path), open(path, newline="", encoding="utf-8") as file:
        rows = list(csv.reader(file))
    if not rows or [h.strip() for h in rows[0]] != ["filename", "label"]:
        raise DataFormatError(f"{path}: first line must be the header 'filename,label'")
    bad = [i + 2 for i, row in enumerate(rows[1:]) if len(row) != 2]
    if bad:
        raise DataFormatError(f"{path}: line {bad[0]} does not have two fields 'filename,label'")
    return [(name.strip(), label.strip()) for name, label in rows[1:]]


def _decode(path: Path, size: int) -> np.ndarray:
    """One image file -> uint8 [size, size, 3] (RGB, bilinear-resized when needed); one whose
    header declares too many pixels is refused before decoding (``bounded.open_image``)."""
    with open_image(path, str(path)) as image:
        image = image.convert("RGB")
        if image.size != (size, size):
            image = image.resize((size, size), Image.BILINEAR)
        return np.asarray(image, dtype=np.uint8)


def read_csv_images(csv_path: Path, image_dir: Path, classes: list[str], per_class: int | None) -> ImageStore:
    """Reads ``{split}.csv`` + ``images/``; every listed file is checked to exist, inside
    ``images/`` (``confined``: no ``../`` row, no link out of it), first."""
    rows = _read_csv_rows(csv_path)
    by_class: dict[str, list[str]] = {}
    for name, wnid in rows:
        by_class.setdefault(wnid, []).append(name)
    check_class_counts({c: len(v) for c, v in by_class.items()}, classes, per_class, str(csv_path))
    files = [image_dir / name for c in classes for name in by_class[c]]
    missing = [str(f) for f in files if not f.is_file()]
    if missing:
        raise DataFormatError(f"{csv_path}: {len(missing)} listed image(s) missing, e.g. {missing[0]}")
    for file in files:
        try:
            confined(image_dir, file)
        except DataFormatError as error:
            raise DataFormatError(f"{csv_path}: a row names {error}") from None
    images = np.empty((len(files), SIZE, SIZE, 3), dtype=np.uint8)
    for i, file in enumerate(tqdm(files, desc=f"decoding {csv_path.name}", disable=None, leave=False)):
        with decoding(file):
            images[i] = _decode(file, SIZE)
    labels = np.repeat(np.arange(len(classes)), [len(by_class[c]) for c in classes])
    return store_from_nhwc(images, labels, classes, f"miniimagenet {csv_path.name}")


@DATASETS.register("miniimagenet")
def load_miniimagenet(root: Path, split: str, image_size: int | None = None, cache_dir=None,
                      images_per_class: int | None = None) -> ImageStore:
    """One MiniImageNet split from ``root`` (pickle cache or CSV + images).
    images_per_class: the count every class must have (default: 600 from data_splits)."""
    split = canonical_split(split)
    info = split_info("miniimagenet")
    classes = list(info[split])
    per_class = images_per_class or info["images_per_class"]
    pkl = f"mini-imagenet-cache-{_PICKLE_SPLIT[split]}.pkl"
    formats = [
        ("pickle cache", [pkl], lambda: read_pickle_cache(root / pkl, classes, per_class)),
        ("CSV + images", [f"{split}.csv", "images"],
         lambda: read_csv_images(root / f"{split}.csv", root / "images", classes, per_class)),
    ]
    return read_first_format("miniimagenet", root, formats, image_size, cache_dir, f"{split}-{per_class}")
