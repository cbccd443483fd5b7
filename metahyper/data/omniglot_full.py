"""Omniglot's full archives under the two published protocols (dataset ``omniglot_full``).

``images_background`` (30 alphabets, 964 characters) and ``images_evaluation`` (20 alphabets,
659 characters), as folders or zips, read by ``omniglot.py``. ``data_splits/omniglot.json``
(``protocols``) defines:

* ``lake``: background alphabets for training, evaluation alphabets for testing. Lake's
  20-way tasks within one alphabet come from the grouping ``alphabet``
  (``metahyper.data.groupings``): ``EpisodeSampler(store, ..., groups="alphabet")``, or
  ``groups: alphabet`` in a suite.
* ``maml``: the sorted listing of all characters of both archives, permuted with a fixed seed;
  the first 1200 are the meta-training classes (with their 90/180/270-degree rotations as extra
  classes), the rest the meta-test classes. The listing's sha256 is checked against the
  recorded one when one is recorded; it could not be computed when the split file was
  written (the archives were not available), so until a user pins it with ``listing_sha256``
  the reader only reports the hash it computed (in the store's ``source``).
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from metahyper.data.omniglot import DEFAULT_SIZE, find_sources, read_omniglot, rotate_classes
from metahyper.data.sources import DATASETS, DataFormatError
from metahyper.data.splits import canonical_split, split_info
from metahyper.data.stores import ImageStore, cached_store

PROTOCOLS = ("lake", "maml")


def listing_hash(characters: Sequence[str]) -> str:
    """sha256 of the sorted ``alphabet/character`` names joined by newlines."""
    return hashlib.sha256("\n".join(sorted(characters)).encode()).hexdigest()


def maml_split(characters: Sequence[str], seed: int, train_characters: int) -> dict[str, list[str]]:
    """The MAML protocol's rule: sort, permute with ``numpy.random.default_rng(seed)``, the
    first ``train_characters`` train, the rest test (each returned sorted)."""
    listing = sorted(characters)
    if not 0 < train_characters < len(listing):
        raise ValueError(f"train_characters={train_characters} must lie in 1..{len(listing) - 1} "
                         f"(the archives hold {len(listing)} characters)")
    order = np.random.default_rng(seed).permutation(len(listing))
    chosen = [listing[i] for i in order]
    return {"train": sorted(chosen[:train_characters]), "val": [], "test": sorted(chosen[train_characters:])}


def _check_count(found: int, expected: int | None, what: str, root: Path) -> None:
    if expected and found != expected:
        raise DataFormatError(f"{root}: {what}: {found} characters, expected {expected} (the full archives'; "
                              "option characters=0 skips this check)")


def _read(root: Path, alphabets: list[str], size: int, per_class: int, cache_dir: Any) -> ImageStore:
    sources = find_sources(root)
    if not sources:
        raise DataFormatError(f"no omniglot files found in {root} (looked for images_background*/, "
                              "images_evaluation*/ folders or .zip archives)")
    tag = f"omniglot_full-{len(alphabets)}-{hashlib.sha256(' '.join(alphabets).encode()).hexdigest()[:8]}-{size}"
    return cached_store(cache_dir, sources, f"{tag}-{per_class}",
                        lambda: read_omniglot(root, alphabets, size, per_class))


def _maml_store(root: Path, split: str, info: dict, size: int, per_class: int, cache_dir: Any,
                characters: int | None, train_characters: int | None, listing_sha256: str | None) -> ImageStore:
    protocol, lake = info["protocols"]["maml"], info["protocols"]["lake"]
    store = _read(root, lake["train"] + lake["test"], size, per_class, cache_dir)
    _check_count(store.num_classes, protocol["characters"] if characters is None else characters, "both archives",
                 root)
    digest = listing_hash(store.class_names)
    pinned = listing_sha256 or protocol["listing_sha256"]
    if pinned and pinned != digest:
        raise DataFormatError(f"{root}: the character listing's sha256 is {digest}, expected {pinned}: the "
                              "archives differ from those the MAML split was recorded on")
    classes = maml_split(store.class_names, protocol["seed"], train_characters or protocol["train_characters"])
    chosen = store.subset(classes[split])
    return ImageStore(chosen.images, chosen.labels, chosen.class_names,
                      f"omniglot maml {split} (listing sha256 {digest})")


@DATASETS.register("omniglot_full")
def load_omniglot_full(root: Path, split: str, image_size: int | None = None, cache_dir=None, protocol: str = "lake",
                       rotations: bool | None = None, images_per_class: int | None = None,
                       characters: int | None = None, train_characters: int | None = None,
                       listing_sha256: str | None = None) -> ImageStore:
    """One split of the full archives under ``protocol`` ('lake' or 'maml'); [N, 1, s, s]
    with s = image_size (default 28). rotations: add 90/180/270-degree rotations as classes
    (default: on for the 'maml' train split only). images_per_class: expected count (20).
    characters: expected characters of the split (lake) or of both archives (maml); default
    the real archives' counts, 0 skips. train_characters (maml, default 1200) and
    listing_sha256 (maml, pins the listing) override the recorded protocol."""
    if protocol not in PROTOCOLS:
        raise ValueError(f"omniglot_full protocol must be one of {PROTOCOLS}, got {protocol!r}")
    info, split = split_info("omniglot"), canonical_split(split)
    size, per_class = image_size or DEFAULT_SIZE, images_per_class or info["images_per_class"]
    if split == "val":
        raise ValueError(f"omniglot_full protocol {protocol!r} has no validation split (train and test only)")
    if protocol == "maml":
        store = _maml_store(root, split, info, size, per_class, cache_dir, characters, train_characters,
                            listing_sha256)
    else:
        lake = info["protocols"]["lake"]
        store = _read(root, lake[split], size, per_class, cache_dir)
        expected = lake["characters"][split] if characters is None else characters
        _check_count(store.num_classes, expected, f"Lake {split} alphabets", root)
    if rotations if rotations is not None else (protocol == "maml" and split == "train"):
        store = rotate_classes(store, (1, 2, 3))
    return store

