"""MNIST reader: the original IDX files, plain or gzipped.

``t10k-images-idx3-ubyte[.gz]`` (magic 2051, then big-endian int32 count, rows, columns, then
uint8 pixels) and ``t10k-labels-idx1-ubyte[.gz]`` (magic 2049, count, uint8 labels 0..9), in the
root or in torchvision's ``MNIST/raw/``. ``data_splits/mnist.json`` makes the ten digits one
target split, ``test``, read from the ``t10k`` files (``files="train"`` reads the 60,000
training digits instead: the same ten classes, another pool of images).

MNIST digits are white on black; Omniglot characters are black on white. ``invert=True``
returns ``255 - pixel`` (black digits on white) so a model trained on Omniglot sees the
polarity it was trained on.
"""

from __future__ import annotations

import gzip
import zlib
from pathlib import Path

import numpy as np
import torch

from metahyper.data.bounded import read_bounded
from metahyper.data.confine import confined
from metahyper.data.sources import DATASETS, DataFormatError, check_class_counts
from metahyper.data.splits import canonical_split, split_info
from metahyper.data.stores import ImageStore, cached_store

IMAGES_MAGIC, LABELS_MAGIC = 2051, 2049
MAX_ITEMS = 100_000  # the published files hold 60,000 and 10,000 digits
_FOLDERS = (".", "MNIST/raw")


def find_idx(root: Path, stem: str) -> Path:
    """``root/<stem>`` or ``root/<stem>.gz``, also under ``MNIST/raw/``; the first that exists
    (and lies inside ``root``: ``confined``)."""
    candidates = [root / folder / name for folder in _FOLDERS for name in (stem, stem + ".gz")]
    for path in candidates:
        if path.is_file():
            confined(root, path)
            return path
    raise DataFormatError(f"no MNIST file {stem}[.gz] in {root} (looked for "
                          f"{', '.join(str(p.relative_to(root)) for p in candidates)})")


def read_idx(path: Path, magic: int, item_shape: tuple[int, ...]) -> np.ndarray:
    """An IDX file's uint8 array [count, *item_shape] after checking the magic number and the
    big-endian header, then reading exactly the count x item size bytes the header declares
    (at most ``MAX_ITEMS`` items): a gzip stream that inflates past it is refused after one byte
    more, never read whole (``metahyper.data.bounded``). Errors name the file."""
    opener = gzip.open if path.suffix == ".gz" else open
    header = 4 * (2 + len(item_shape))
    try:
        with opener(path, "rb") as file:
            head = file.read(header)
            if len(head) < header:
                raise DataFormatError(f"{path}: {len(head)} bytes, shorter than the IDX header ({header} bytes)")
            shape = _check_header(path, head, magic, item_shape)
            size = int(np.prod(shape))
            data = read_bounded(file, size)
    except (OSError, EOFError, zlib.error) as err:
        raise DataFormatError(f"{path}: not readable ({type(err).__name__}: {err})") from None
    if len(data) < size:
        raise DataFormatError(f"{path}: {header + len(data)} bytes, expected {header + size} for {shape[0]} items "
                              "(truncated?)")
    if len(data) > size:
        raise DataFormatError(f"{path}: longer than the {header + size} bytes its header declares for {shape[0]} "
                              "items (refused unread past that: a decompression bomb or a damaged file)")
    return np.frombuffer(data, dtype=np.uint8).reshape(shape)


def _check_header(path: Path, head: bytes, magic: int, item_shape: tuple[int, ...]) -> list[int]:
    """The shape an IDX header declares, checked against ``magic``, ``item_shape`` and ``MAX_ITEMS``."""
    found, *shape = np.frombuffer(head, dtype=">i4").tolist()
    if found != magic:
        raise DataFormatError(f"{path}: magic number {found}, expected {magic} "
                              f"({'images' if magic == IMAGES_MAGIC else 'labels'} file)")
    if tuple(shape[1:]) != item_shape:
        raise DataFormatError(f"{path}: items of shape {tuple(shape[1:])}, expected {item_shape}")
    if not 0 <= shape[0] <= MAX_ITEMS:
        raise DataFormatError(f"{path}: header declares {shape[0]} items; an MNIST file holds 0..{MAX_ITEMS}")
    return shape


def read_mnist(root: Path, files: str) -> ImageStore:
    """Images and labels of the ``files`` ('t10k' or 'train') IDX pair as classes '0'..'9'."""
    images_path = find_idx(root, f"{files}-images-idx3-ubyte")
    labels_path = find_idx(root, f"{files}-labels-idx1-ubyte")
    images = read_idx(images_path, IMAGES_MAGIC, (28, 28))
    labels = read_idx(labels_path, LABELS_MAGIC, ())
    if len(images) != len(labels):
        raise DataFormatError(f"{images_path}: {len(images)} images, but {labels_path} has {len(labels)} labels")
    if len(labels) and int(labels.max()) > 9:
        raise DataFormatError(f"{labels_path}: label {int(labels.max())} outside 0..9")
    tensor = torch.from_numpy(images.copy()).unsqueeze(1)
    return ImageStore(tensor, torch.from_numpy(labels.astype(np.int64)), [str(d) for d in range(10)],
                      f"mnist {images_path.name}")


@DATASETS.register("mnist")
def load_mnist(root: Path, split: str, image_size: int | None = None, cache_dir=None, files: str = "t10k",
               invert: bool = False) -> ImageStore:
    """The digits of ``split`` (``data_splits/mnist.json``: all ten in ``test``) from the
    ``files`` IDX pair ('t10k', default, or 'train'); [N, 1, 28, 28] or resized to
    ``image_size``. invert: black digits on white (Omniglot's polarity)."""
    classes = split_info("mnist")[canonical_split(split)]
    if not classes:
        raise ValueError(f"mnist has no {split!r} split: its ten digits are all in the 'test' split "
                         "(data_splits/mnist.json), a target domain")
    if files not in ("t10k", "train"):
        raise ValueError(f"mnist option files must be 't10k' or 'train', got {files!r}")
    sources = [find_idx(root, f"{files}-{kind}-idx{n}-ubyte") for kind, n in (("images", 3), ("labels", 1))]

    def build() -> ImageStore:
        store = read_mnist(root, files)
        counts = dict(zip(store.class_names, store.images_per_class.tolist()))
        check_class_counts({c: n for c, n in counts.items() if n}, classes, None, f"{root} (MNIST {files})")
        store = store.subset(classes)
        return store.resized(image_size) if image_size else store

    store = cached_store(cache_dir, sources, f"mnist-{files}-{image_size}", build)
    if invert:
        store = ImageStore(255 - store.images, store.labels, store.class_names, store.source + " inverted")
    return store
