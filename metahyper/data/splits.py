"""Class splits per data set, read from the repository's ``data_splits/`` folder.

``data_splits/<dataset>.json`` is the one source of truth for which classes belong to the
train, val and test split of a data set. An installed wheel carries the folder inside the
package (``metahyper.resources``).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from metahyper.resources import SPLITS_DIR

SPLIT_NAMES = ("train", "val", "test")
_ALIASES = {"validation": "val", "valid": "val"}


def splits_dir() -> Path:
    """The ``data_splits/`` folder: the checkout's, or the one shipped in the package."""
    return SPLITS_DIR


def canonical_split(split: str) -> str:
    """Maps 'validation'/'valid' to 'val'; raises ``ValueError`` for unknown split names."""
    name = _ALIASES.get(split, split)
    if name not in SPLIT_NAMES:
        raise ValueError(f"split must be one of {SPLIT_NAMES} (or 'validation'), got {split!r}")
    return name


@dataclass(frozen=True)
class ClassSplit:
    """Class names of the train, val and test split; the three are pairwise disjoint."""

    train: tuple[str, ...]
    val: tuple[str, ...]
    test: tuple[str, ...]

    def __post_init__(self) -> None:
        for name in SPLIT_NAMES:
            classes = getattr(self, name)
            if len(set(classes)) != len(classes):
                raise ValueError(f"split {name!r} lists a class twice")
        for a, b in (("train", "val"), ("train", "test"), ("val", "test")):
            common = set(getattr(self, a)) & set(getattr(self, b))
            if common:
                raise ValueError(f"splits {a!r} and {b!r} share classes: {sorted(common)[:5]}")

    def get(self, split: str) -> tuple[str, ...]:
        """Class names of ``split`` ('train', 'val'/'validation' or 'test')."""
        return getattr(self, canonical_split(split))


def split_path(dataset: str, directory: str | Path | None = None) -> Path:
    """``<directory or data_splits>/<dataset>.json``."""
    return Path(directory or splits_dir()) / f"{dataset}.json"


def split_info(dataset: str, directory: str | Path | None = None) -> dict[str, Any]:
    """The raw JSON of ``data_splits/<dataset>.json`` (split lists plus data-set metadata)."""
    path = split_path(dataset, directory)
    if not path.parent.is_dir():
        raise FileNotFoundError(f"class split folder {path.parent} not found")
    if not path.is_file():
        known = sorted(p.stem for p in path.parent.glob("*.json"))
        raise FileNotFoundError(f"no class split file {path} (known data sets: {known})")
    info = json.loads(path.read_text())
    missing = [name for name in SPLIT_NAMES if not isinstance(info.get(name), list)]
    if missing:
        raise ValueError(f"{path}: missing list(s) {missing}")
    return info


def load_split(dataset: str, directory: str | Path | None = None) -> ClassSplit:
    """Reads ``data_splits/<dataset>.json`` into a validated ``ClassSplit``."""
    info = split_info(dataset, directory)
    try:
        return ClassSplit(*(tuple(str(c) for c in info[name]) for name in SPLIT_NAMES))
    except ValueError as err:
        raise ValueError(f"{split_path(dataset, directory)}: {err}") from None
