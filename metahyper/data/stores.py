"""ImageStore: every image of one split as a uint8 tensor, plus labels and class names.

Decoded stores can be cached as ``.npy`` files (memory-mapped on load) under a key made of
the sources' SHA-256 (a folder source: its path, size and modification time), so a changed
source is decoded again. The cache records the SHA-256 of its own files and is checked on every
load: a cache that was edited, truncated or damaged is decoded again from its sources (a line
on the log names it), never trusted.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np
import torch
from torch import Tensor

from metahyper.atomic import atomic_write, write_text_atomic
from metahyper.data.bounded import check_store_memory
from metahyper.data.imageops import resize
from metahyper.files import UnusableFileError, read_json, sha256_file
from metahyper.progress import LOGGER


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

    @classmethod
    def from_arrays(cls, images: np.ndarray | Tensor, labels: np.ndarray | Tensor | Sequence[int],
                    class_names: Sequence[str] | None = None, channels_last: bool = False,
                    source: str = "arrays") -> "ImageStore":
        """A store from uint8 images [N, C, H, W] ([N, H, W, C] with ``channels_last``; [N, H, W]
        is one channel) and integer labels of any values. Classes are the sorted distinct labels,
        relabelled 0..K-1; ``class_names[label]`` names them (default: the label as text)."""
        tensor = torch.as_tensor(np.asarray(images) if not isinstance(images, Tensor) else images)
        if tensor.dtype != torch.uint8:
            raise ValueError(f"images must be uint8, got {tensor.dtype} (scale floats in [0, 1] by 255 first)")
        if tensor.dim() == 3:
            tensor = tensor.unsqueeze(1)
        elif channels_last and tensor.dim() == 4:
            tensor = tensor.permute(0, 3, 1, 2)
        values = torch.as_tensor(np.asarray(labels), dtype=torch.int64).reshape(-1)
        present, relabelled = torch.unique(values, return_inverse=True)
        known = len(class_names) if class_names is not None else None
        if known is not None and len(values) and not 0 <= int(present.min()) <= int(present.max()) < known:
            raise ValueError(f"labels must index class_names (0..{len(class_names) - 1}), got {present.tolist()[:5]}")
        names = [str(class_names[v]) if class_names is not None else str(v) for v in present.tolist()]
        return cls(tensor.contiguous(), relabelled, names, source)

    @classmethod
    def from_dataset(cls, dataset: Any, class_names: Sequence[str] | None = None) -> "ImageStore":
        """A store from any map-style dataset whose items are (image, label): a PIL image, a
        uint8 array/tensor (HWC for arrays, CHW for tensors) or a float tensor in [0, 1] (CHW,
        as after ``ToTensor``), e.g. torchvision's ``ImageFolder`` or ``FakeData``. Every image
        must have one shape (resize in the dataset's transform). ``class_names`` defaults to
        the dataset's ``classes``. Reads every item once, into memory."""
        if len(dataset) == 0:
            raise ValueError(f"dataset {type(dataset).__name__} is empty")
        images, labels = [], []
        for index in range(len(dataset)):
            image, label = dataset[index]
            images.append(_chw_uint8(image, index))
            labels.append(int(label))
        shapes = {tuple(image.shape) for image in images}
        if len(shapes) > 1:
            raise ValueError(f"dataset images have several shapes {sorted(shapes)[:3]}: resize them in its transform")
        names = class_names if class_names is not None else getattr(dataset, "classes", None)
        return cls.from_arrays(torch.stack(images), labels, names, source=type(dataset).__name__)

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
        """A new store with every image resized to ``size`` x ``size`` (antialiased); a
        ``ValueError`` before any allocation when that store would not fit in memory."""
        if self.image_shape[1:] == (size, size):
            return self
        check_store_memory(len(self), self.image_shape[0], size, f"image_size={size} for {self.source or 'a store'}")
        out = torch.empty((len(self), self.image_shape[0], size, size), dtype=torch.uint8)
        for start in range(0, len(self), chunk):
            out[start : start + chunk] = resize(self.images[start : start + chunk], size)
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


def _chw_uint8(image: Any, index: int) -> Tensor:
    """One dataset image (PIL, uint8 HWC array, uint8 or [0, 1] float CHW tensor) as uint8 [C, H, W]."""
    if isinstance(image, Tensor):
        if image.is_floating_point():
            image = image.mul(255).round_().clamp_(0, 255).to(torch.uint8)
        tensor = image if image.dim() == 3 else image.unsqueeze(0)
    else:
        array = np.asarray(image)
        tensor = torch.from_numpy(array.copy()).unsqueeze(0) if array.ndim == 2 else \
            torch.from_numpy(array.copy()).permute(2, 0, 1)
    if tensor.dtype != torch.uint8 or tensor.dim() != 3:
        raise ValueError(f"dataset item {index}: image must become uint8 [C, H, W], got {tensor.dtype} "
                         f"{tuple(tensor.shape)}")
    return tensor


def store_from_nhwc(images: np.ndarray, labels: np.ndarray | Sequence[int], class_names: Sequence[str],
                    source: str = "") -> ImageStore:
    """Builds a store from uint8 [N, H, W, C] images (copied once into contiguous NCHW)."""
    tensor = torch.from_numpy(np.ascontiguousarray(images)).permute(0, 3, 1, 2).contiguous()
    return ImageStore(tensor, torch.as_tensor(np.asarray(labels), dtype=torch.int64), class_names, source)


def cache_key(sources: Sequence[str | Path], tag: str) -> str:
    """Hex key from ``tag`` and each source: a file's SHA-256, a folder's resolved path, size
    and mtime (ns)."""
    digest = hashlib.sha256(tag.encode())
    for source in map(Path, sources):
        if source.is_file():
            digest.update(f"file|{sha256_file(source)}".encode())
        else:
            stat = source.stat()
            digest.update(f"{source.resolve()}|{stat.st_size}|{stat.st_mtime_ns}".encode())
    return digest.hexdigest()[:20]


_CACHED = ("images.npy", "labels.npy")


def cached_store(cache_dir: str | Path | None, sources: Sequence[str | Path], tag: str,
                 build: Callable[[], ImageStore]) -> ImageStore:
    """Returns the cached store for (sources, tag) from ``cache_dir``, or builds, saves and
    returns it. ``cache_dir=None`` disables caching. Cached images are memory-mapped
    (copy-on-write) after their SHA-256 is checked against ``classes.json`` (module docstring);
    each file is written atomically and ``classes.json``, with those hashes, last."""
    if cache_dir is None:
        return build()
    readable = "".join(ch if ch.isalnum() or ch in "-_+" else "_" for ch in tag)[:80]
    folder = Path(cache_dir) / f"{readable}-{cache_key(sources, tag)}"
    if (folder / "classes.json").is_file():
        try:
            return _load_cache(folder)
        except UnusableFileError as error:
            LOGGER.info(f"{error}; decoding the sources again")
    store = build()
    folder.mkdir(parents=True, exist_ok=True)
    for name, tensor in zip(_CACHED, (store.images, store.labels)):
        with atomic_write(folder / name, "wb") as file:
            np.save(file, tensor.numpy(), allow_pickle=False)
    meta = {"class_names": store.class_names, "source": store.source,
            "sha256": {name: sha256_file(folder / name) for name in _CACHED}}
    write_text_atomic(folder / "classes.json", json.dumps(meta))
    return store


def _load_cache(folder: Path) -> ImageStore:
    """The store cached in ``folder``; ``UnusableFileError`` naming the file that is unreadable or
    differs from the SHA-256 ``classes.json`` recorded (a cache without hashes, written by an
    older version, is not trusted either)."""
    meta = read_json(folder / "classes.json", "it is rebuilt")
    recorded = meta.get("sha256")
    if not isinstance(recorded, dict):
        raise UnusableFileError(f"data cache {folder / 'classes.json'} records no SHA-256 of its files")
    for name in _CACHED:
        if not (folder / name).is_file() or sha256_file(folder / name) != recorded.get(name):
            raise UnusableFileError(f"data cache {folder / name} is missing or differs from the SHA-256 recorded in "
                                    f"{folder / 'classes.json'} (truncated, damaged or edited)")
    try:
        images = torch.from_numpy(np.load(folder / "images.npy", mmap_mode="c", allow_pickle=False))
        labels = torch.from_numpy(np.load(folder / "labels.npy", allow_pickle=False))
        return ImageStore(images, labels, meta["class_names"], meta["source"])
    except (OSError, ValueError, KeyError, TypeError) as error:
        raise UnusableFileError(f"data cache {folder}: unreadable ({type(error).__name__})") from None
