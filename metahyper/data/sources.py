"""Reading data sets from disk: the dataset registry (``load_store`` in ``load.py`` builds from
it), a restricted unpickler for untrusted pickles, sha256 manifests, and input checks that fail
with a message naming the file and the problem before any decoding starts.

The readers themselves live in ``miniimagenet.py``, ``cifar.py`` (CIFAR-10/100, FC100),
``omniglot.py`` and ``synthetic.py``; each registers itself in ``DATASETS``.
"""

from __future__ import annotations

import json
import pickle
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator, Mapping, Sequence

import numpy as np

from metahyper.data.confine import confined
from metahyper.data.stores import ImageStore, cached_store
from metahyper.errors import DataFormatError
from metahyper.files import sha256_file
from metahyper.registry import Registry

DATASETS: Registry[ImageStore] = Registry("data set")


# Globals a pickled numpy array (numpy 1.x and 2.x, protocols 0-5) needs, and nothing else.
_SAFE_GLOBALS = {
    ("numpy", "ndarray"),
    ("numpy", "dtype"),
    ("_codecs", "encode"),
    *((f"numpy.{core}.multiarray", name) for core in ("core", "_core") for name in ("_reconstruct", "scalar")),
    *((f"numpy.{core}.numeric", "_frombuffer") for core in ("core", "_core")),
}


class _RestrictedUnpickler(pickle.Unpickler):
    """Admits numpy arrays, dtypes and scalars plus plain containers and literals."""

    def __init__(self, file, path: Path, encoding: str):
        super().__init__(file, encoding=encoding)
        self._path = path

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) in _SAFE_GLOBALS:
            return super().find_class(module, name)
        raise DataFormatError(f"{self._path}: refused to unpickle global {module}.{name} "
                              "(only numpy arrays and plain containers are allowed)")


def safe_load_pickle(path: str | Path, encoding: str = "ASCII") -> Any:
    """Unpickles ``path`` admitting only numpy arrays/dtypes/scalars, dict, list, tuple, str,
    bytes, int, float, bool and None; any other global raises ``DataFormatError``."""
    path = Path(path)
    with open(path, "rb") as file:
        try:
            return _RestrictedUnpickler(file, path, encoding).load()
        except DataFormatError:
            raise
        except Exception as err:  # truncated or corrupt file
            raise DataFormatError(f"{path}: not a readable pickle ({type(err).__name__}: {err})") from None


@contextmanager
def decoding(path: str | Path, member: str | None = None) -> Iterator[None]:
    """Turns any error raised while reading or decoding ``path`` (``member`` of an archive) into
    a ``DataFormatError`` naming them: a file that is not an image (PIL.UnidentifiedImageError),
    a truncated archive (zipfile.BadZipFile), a damaged member (zlib.error, EOFError), a binary
    CSV (UnicodeDecodeError). Every reader wraps its decoding in it, so a bad file stops the
    suite with one clear message before any training."""
    try:
        yield
    except DataFormatError:
        raise
    except Exception as error:  # whatever the decoder raises: the file is unusable either way
        where = f"{path}" if member is None else f"{path}, member {member}"
        raise DataFormatError(f"{where}: damaged or not in the expected format "
                              f"({type(error).__name__}: {error})") from None


def verify_checksums(paths: Iterable[str | Path], manifest: Mapping[str, str] | str | Path) -> None:
    """Checks each file's sha256 against ``manifest`` ({file name: hex sha256}, or a JSON file
    holding that dict). A file matches the entry whose key is its path or a trailing part of
    it ('train' or 'cifar-100-python/train' for '/data/cifar-100-python/train'). Raises ``DataFormatError`` naming every
    file that is missing, absent from the manifest or different. This package ships no
    checksums for the public data files (their canonical hashes are not known to us): the
    manifest is the user's own, e.g. written once from files they trust."""
    if not isinstance(manifest, Mapping):
        manifest = json.loads(Path(manifest).read_text())
    problems = []
    for path in map(Path, paths):
        posix = path.as_posix()
        expected = next((v for k, v in manifest.items() if posix == k or posix.endswith("/" + k)), None)
        if expected is None:
            problems.append(f"{path}: not in the manifest")
        elif not path.is_file():
            problems.append(f"{path}: missing")
        elif sha256_file(path) != expected.lower():
            problems.append(f"{path}: sha256 differs from the manifest")
    if problems:
        raise DataFormatError("checksum verification failed:\n  " + "\n  ".join(problems))


def require_key(obj: Any, key: str, path: Path) -> Any:
    """``obj[key]`` of an unpickled dict, or a ``DataFormatError`` naming file and key."""
    if not isinstance(obj, dict):
        raise DataFormatError(f"{path}: expected a dict at the top level, got {type(obj).__name__}")
    if key not in obj:
        raise DataFormatError(f"{path}: missing key {key!r} (found keys: {sorted(map(str, obj))})")
    return obj[key]


def require_array(value: Any, path: Path, field: str, dtype: np.dtype | type,
                  shape: Sequence[int | None]) -> np.ndarray:
    """Checks that ``value`` is an ndarray of ``dtype`` and ``shape`` (None = any size)."""
    if not isinstance(value, np.ndarray):
        raise DataFormatError(f"{path}: {field!r} must be a numpy array, got {type(value).__name__}")
    if value.dtype != np.dtype(dtype):
        raise DataFormatError(f"{path}: {field!r} must have dtype {np.dtype(dtype)}, got {value.dtype}")
    ok = value.ndim == len(shape) and all(s is None or s == v for s, v in zip(shape, value.shape))
    if not ok:
        want = ", ".join("N" if s is None else str(s) for s in shape)
        raise DataFormatError(f"{path}: {field!r} must have shape ({want}), got {value.shape}")
    return value


def require_int_list(value: Any, path: Path, field: str, length: int | None = None) -> np.ndarray:
    """A list/array of integers (e.g. labels or row indices) as int64 [n]."""
    array = np.asarray(value)
    if array.ndim != 1 or (array.size and not np.issubdtype(array.dtype, np.integer)):
        raise DataFormatError(f"{path}: {field!r} must be a flat list of integers")
    if length is not None and len(array) != length:
        raise DataFormatError(f"{path}: {field!r} has {len(array)} entries, expected {length}")
    return array.astype(np.int64)


def check_class_counts(counts: Mapping[str, int], classes: Sequence[str], per_class: int | None,
                       where: str) -> None:
    """Every class of the split is present (and no other), each with ``per_class`` images."""
    missing = [c for c in classes if c not in counts]
    if missing:
        raise DataFormatError(f"{where}: {len(missing)} class(es) of the split absent: {missing[:5]}")
    extra = sorted(set(counts) - set(classes))
    if extra:
        raise DataFormatError(f"{where}: {len(extra)} class(es) not in the split: {extra[:5]}")
    wrong = {c: counts[c] for c in classes if per_class is not None and counts[c] != per_class}
    if wrong:
        shown = ", ".join(f"{c}: {n}" for c, n in list(wrong.items())[:5])
        raise DataFormatError(f"{where}: expected {per_class} images per class, got {shown}")


Format = tuple[str, Sequence[str], Callable[[], ImageStore]]  # (name, files read, reader)


def read_first_format(dataset: str, root: Path, formats: Sequence[Format], image_size: int | None,
                      cache_dir: str | Path | None, tag: str) -> ImageStore:
    """Reads ``root`` with the first format whose files (relative to ``root``) all exist and
    lie inside it (``confined``), resizes to ``image_size`` (None: keep), and goes through the ``.npy`` cache when
    ``cache_dir`` is given; raises ``DataFormatError`` naming the root and the files looked
    for when no format is present."""
    for name, files, read in formats:
        paths = [root / f for f in files]
        if all(p.exists() for p in paths):
            for path in paths:
                confined(root, path)  # no link out of the root (metahyper.data.confine)
            build = read if image_size is None else lambda: read().resized(image_size)
            return cached_store(cache_dir, paths, f"{dataset}-{tag}-{image_size}", build)
    looked = "; ".join(f"{name}: {', '.join(files)}" for name, files, _ in formats)
    raise DataFormatError(f"no {dataset} files found in {root} (looked for {looked})")
