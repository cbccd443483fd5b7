"""``load_store``: one split of a registered data set as an ``ImageStore``, fetched first when asked.

``download=True`` fetches what the data set needs into its root unless the root holds it
already, with the same downloads, checksums and atomic placement as ``metahyper data fetch``
and a suite's ``--download`` (``metahyper.data.fetch.fetch_for_spec``). Without ``root`` the
data set's folder is ``$METAHYPER_DATA/<dataset>``, the built-in suites' default data root.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, Mapping

from metahyper.data.fetch import fetch_command, fetch_for_spec
from metahyper.data.sources import DATASETS, verify_checksums
from metahyper.data.stores import ImageStore
from metahyper.progress import LOGGER

DATA_ENV = "METAHYPER_DATA"


def default_root(dataset: str) -> Path:
    """``$METAHYPER_DATA/<dataset>``; a ``ValueError`` says what to pass when the variable is unset."""
    base = os.environ.get(DATA_ENV)
    if not base:
        raise ValueError(f"{dataset}: no data root: pass root=... (--root on the command line), or set "
                         f"{DATA_ENV} to the folder holding <dataset>/ folders")
    return Path(base) / dataset


def load_store(dataset: str, root: str | Path | None, split: str, image_size: int | None = None,
               cache_dir: str | Path | None = None, manifest: Mapping[str, str] | str | Path | None = None, *,
               download: bool = False, mirror: str | None = None, checksums: Mapping[str, str] | None = None,
               **options: Any) -> ImageStore:
    """Loads one split of a data set as an ``ImageStore`` (uint8 [N, C, H, W]).

    dataset: a registered name (``metahyper list datasets``). root: the folder holding the files
    (the format is detected from what is there; None: ``default_root``; unused for 'synthetic').
    split: 'train', 'val' or 'test' ('train'/'test' for CIFAR). image_size: resize to this square
    size once at load time (None = the data set's own size; Omniglot 28). cache_dir: keep the
    decoded store as memory-mapped ``.npy`` there. manifest: verify the sha256 of every file it
    names (under root) first. download: fetch what the data set needs into root first (module
    docstring; ``mirror`` replaces the download hosts as ``--mirror`` does, ``checksums``
    {file name: md5} replaces torchvision's). options: reader-specific keywords (e.g.
    ``images_per_class`` for the expected count, Omniglot ``rotations``, synthetic
    ``family``/``num_classes``/``seed``).
    """
    if dataset not in DATASETS:
        DATASETS.get(dataset)  # raises KeyError listing the known names
    if dataset != "synthetic":
        root = default_root(dataset) if root is None else Path(root)
        if download:
            fetch_into(dataset, root, options, mirror, checksums)
        if not root.is_dir():
            hint = " (download=True fetches it)" if not download and fetch_command(dataset, str(root)) else ""
            raise FileNotFoundError(f"{dataset}: data root {root} is not a folder{hint}")
        if manifest is not None:
            names = manifest if isinstance(manifest, Mapping) else json.loads(Path(manifest).read_text())
            verify_checksums([root / name for name in names], names)
    return DATASETS.build(dataset, root=root, split=split, image_size=image_size, cache_dir=cache_dir, **options)


def fetch_into(dataset: str, root: Path, options: Mapping[str, Any], mirror: str | None,
               checksums: Mapping[str, str] | None) -> None:
    """``download=True``: what ``dataset`` (with its reader ``options``) needs, into ``root``;
    a ``ValueError`` for a data set without a download."""
    if fetch_command(dataset, str(root)) is None:
        raise ValueError(f"{dataset} cannot be downloaded (MiniImageNet has no stable official download; the "
                         "README's 'Fetching data' says where people get it); pass download=False")
    fetch_for_spec(dataset, str(root), options, mirror, checksums, log=LOGGER.info)
