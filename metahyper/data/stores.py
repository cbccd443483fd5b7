"""ImageStore: every image of one split as a uint8 tensor, plus labels and class names.

Decoded stores can be cached as ``.npy`` files (memory-mapped on load) under a key made of
the source files' paths, sizes and modification times, so a changed source is decoded again.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Callable, Sequence

import numpy as np
import torch
from torch import Tensor

from metahyper.atomic import atomic_write, write_text_atomic
from metahyper.data import transforms


class ImageStore:
    """All images of a split: ``images`` uint8 [N, C, H, W] (contiguous; may wrap a
    memory-mapped array; may live on a GPU, see ``to``), ``labels`` int64 [N] with values
    0..K-1, kept on the CPU where the samplers' keyed generators pick rows, ``class_names`` (K
    names, label k is ``class_names[k]``). ``source`` is a free-text note on where it came from."""

    def __init__(self, images: Tensor, labels: Tensor, class_names: Sequence[str], source: str = ""):
        if images.dtype != torch.uint8 or images.dim() != 4:
            raise ValueError(f"images must be uint8 [N, C, H, W], got {images.dtype} {tuple(images.shape)}")
        if labels.dtype != torch.int64 or labels.shape != images.shape[:1]:
            raise ValueError(f"labels must be int64 [{images.shape[0]}], got {labels.dtype} {tuple(labels.shape)}")
        names = [str(name) for name in class_names]
        if len(set(names)) != len(names):
            raise ValueError("class_names contains duplicates")
        if len(labels) and (int(labels.min()) < 0 or int(labels.max()) >= len(names)):
            raise ValueError(f"labels must lie in 0..{len(names) - 1} (one per class name)")
        self.images = images.contiguous()
        self.labels = labels.cpu()
        self.class_names = names
        self.source = source
        self._counts: Tensor | None = None

    def __len__(self) -> int:
        return self.images.shape[0]

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    @property
    def image_shape(self) -> tuple[int, int, int]:
        """(C, H, W) of every image."""
        return tuple(self.images.shape[1:])  # type: ignore[return-value]

    @property
    def images_per_class(self) -> Tensor:
        """int64 [K]: number of images of each class."""
        if self._counts is None:
            self._counts = torch.bincount(self.labels, minlength=self.num_classes)
        return self._counts

    def subset(self, class_names: Sequence[str]) -> "ImageStore":
        """A new store with only ``class_names``, relabelled 0..k-1 in the given order."""
        index = {name: k for k, name in enumerate(self.class_names)}
        missing = [name for name in class_names if name not in index]
        if missing:
            raise KeyError(f"classes not in store ({self.source or 'unnamed'}): {missing[:5]}")
        old_ids = torch.tensor([index[name] for name in class_names], dtype=torch.int64)
        new_of_old = torch.full((self.num_classes,), -1, dtype=torch.int64)
        new_of_old[old_ids] = torch.arange(len(old_ids))
        rows = torch.nonzero(new_of_old[self.labels] >= 0).flatten()
        images = self.images.view(len(self), -1).index_select(0, rows.to(self.images.device))
        return ImageStore(images.view(-1, *self.image_shape), new_of_old[self.labels[rows]], class_names, self.source)

    def to(self, device: torch.device | str) -> "ImageStore":
        """The same store with its images on ``device`` (e.g. resident on a GPU, so that episodes
        are gathered there in one ``index_select``); the labels stay on the CPU."""
        return ImageStore(self.images.to(device), self.labels, self.class_names, self.source)

    def resized(self, size: int, chunk: int = 1024) -> "ImageStore":
        """A new store with every image resized to ``size`` x ``size`` (antialiased)."""
        if self.image_shape[1:] == (size, size):
            return self
        out = torch.empty((len(self), self.image_shape[0], size, size), dtype=torch.uint8)
        for start in range(0, len(self), chunk):
            out[start : start + chunk] = transforms.resize(self.images[start : start + chunk], size)
        return ImageStore(out, self.labels, self.class_names, self.source)

    def fingerprint(self) -> str:
        """sha256 over class names, image shape and labels: the store's identity for episode
        sets (image bytes are not hashed; that would cost a pass over the whole store)."""
        digest = hashlib.sha256(json.dumps([self.class_names, list(self.images.shape)]).encode())
        digest.update(self.labels.numpy().tobytes())
        return digest.hexdigest()

    def summary(self) -> str:
        """A few lines describing the store (sizes, classes, images per class)."""
        counts = self.images_per_class
        lo, hi = (int(counts.min()), int(counts.max())) if len(counts) else (0, 0)
        shown = ", ".join(self.class_names[:5]) + (", ..." if self.num_classes > 5 else "")
        return "\n".join([
            f"ImageStore {self.source}".rstrip(),
            f"  images: {len(self)} x {self.image_shape} uint8 ({self.images.numel() / 2**20:.1f} MiB)",
            f"  classes: {self.num_classes} ({shown})",
            f"  images per class: {lo}..{hi}",
        ])

    def __repr__(self) -> str:
        return (f"ImageStore(n={len(self)}, shape={self.image_shape}, classes={self.num_classes}, "
                f"source={self.source!r})")


def store_from_nhwc(images: np.ndarray, labels: np.ndarray | Sequence[int], class_names: Sequence[str],
                    source: str = "") -> ImageStore:
    """Builds a store from uint8 [N, H, W, C] images (copied once into contiguous NCHW)."""
    tensor = torch.from_numpy(np.ascontiguousarray(images)).permute(0, 3, 1, 2).contiguous()
    return ImageStore(tensor, torch.as_tensor(np.asarray(labels), dtype=torch.int64), class_names, source)


def cache_key(sources: Sequence[str | Path], tag: str) -> str:
    """Hex key from ``tag`` and each source's resolved path, size and mtime (ns)."""
    digest = hashlib.sha256(tag.encode())
    for source in sources:
        stat = Path(source).stat()
        digest.update(f"{Path(source).resolve()}|{stat.st_size}|{stat.st_mtime_ns}".encode())
    return digest.hexdigest()[:20]


def cached_store(cache_dir: str | Path | None, sources: Sequence[str | Path], tag: str,
                 build: Callable[[], ImageStore]) -> ImageStore:
    """Returns the cached store for (sources, tag) from ``cache_dir``, or builds, saves and
    returns it. ``cache_dir=None`` disables caching. Cached images are memory-mapped
    (copy-on-write); each file is written atomically and ``classes.json`` last."""
    if cache_dir is None:
        return build()
    readable = "".join(ch if ch.isalnum() or ch in "-_+" else "_" for ch in tag)[:80]
    folder = Path(cache_dir) / f"{readable}-{cache_key(sources, tag)}"
    if (folder / "classes.json").is_file():
        images = torch.from_numpy(np.load(folder / "images.npy", mmap_mode="c", allow_pickle=False))
        labels = torch.from_numpy(np.load(folder / "labels.npy", allow_pickle=False))
        meta = json.loads((folder / "classes.json").read_text())
        return ImageStore(images, labels, meta["class_names"], meta["source"])
    store = build()
    folder.mkdir(parents=True, exist_ok=True)
    for name, tensor in (("images.npy", store.images), ("labels.npy", store.labels)):
        with atomic_write(folder / name, "wb") as file:
            np.save(file, tensor.numpy(), allow_pickle=False)
    write_text_atomic(folder / "classes.json", json.dumps({"class_names": store.class_names, "source": store.source}))
    return store
