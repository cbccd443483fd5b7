"""Omniglot reader: ``images_background*/`` and ``images_evaluation*/`` folders or zip archives.

Layout ``<set>/<alphabet>/<character>/*.png`` (105x105 binary images, 20 per character),
read directly from the folders or from ``<set>.zip``. Class name: ``alphabet/character``.
Images are converted to greyscale uint8 (background 255, strokes 0) and resized once at
load time (default 28x28). An alphabet present in several sets (``Greek`` and ``Latin`` are
in both ``_small1`` and ``_small2``) is read from the first set in name order. Optional
rotations by 90, 180, 270 degrees add classes ``alphabet/character/rot90`` etc.
"""

from __future__ import annotations

import zipfile
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Sequence

import numpy as np
import torch
from PIL import Image

from metahyper.data.bounded import open_image, read_member
from metahyper.data.confine import confined
from metahyper.data.sources import DATASETS, DataFormatError, check_class_counts, decoding
from metahyper.data.splits import canonical_split, split_info
from metahyper.data.stores import ImageStore, cached_store

NATIVE, DEFAULT_SIZE = 105, 28
_SET_PREFIXES = ("images_background", "images_evaluation")


@dataclass
class _Alphabet:
    """Where one alphabet was found: its source (folder or zip) and its character files."""

    source: Path
    characters: dict[str, list[str]] = field(default_factory=dict)  # character -> member paths


def find_sources(root: Path) -> list[Path]:
    """The Omniglot sets in ``root``: folders first, then zips, each in name order (each inside
    ``root``, not a link out of it: ``confined``)."""
    found = [p for p in sorted(root.iterdir()) if p.name.startswith(_SET_PREFIXES)]
    sources = [p for p in found if p.is_dir()] + [p for p in found if p.suffix == ".zip" and p.is_file()]
    for source in sources:
        confined(root, source)
    return sources


def _members(source: Path) -> list[PurePosixPath]:
    """All ``<set>/<alphabet>/<character>/<file>.png`` paths of a folder or zip source (a
    folder's files each checked to lie inside the data root, ``source``'s parent)."""
    if source.is_dir():
        files = sorted(source.glob("*/*/*.png"))
        for path in files:
            confined(source.parent, path)
        return [PurePosixPath(source.name, *p.relative_to(source).parts) for p in files]
    with decoding(source), zipfile.ZipFile(source) as archive:
        return [PurePosixPath(n) for n in archive.namelist() if n.endswith(".png") and n.count("/") == 3]


def index_alphabets(root: Path) -> dict[str, _Alphabet]:
    """alphabet -> where it is and its characters' image files (sorted)."""
    alphabets: dict[str, _Alphabet] = {}
    for source in find_sources(root):
        found: dict[str, _Alphabet] = {}
        for member in _members(source):
            _, alphabet, character, _ = member.parts
            entry = found.setdefault(alphabet, _Alphabet(source))
            entry.characters.setdefault(character, []).append(str(member))
        for name, entry in found.items():
            alphabets.setdefault(name, entry)
    for entry in alphabets.values():
        entry.characters = {c: sorted(f) for c, f in sorted(entry.characters.items())}
    return alphabets


def resized_array(image: Image.Image, size: int) -> np.ndarray:
    """A greyscale (mode 'L') image -> uint8 [size, size] (bilinear, antialiased when shrinking)."""
    if image.size != (size, size):
        image = image.resize((size, size), Image.BILINEAR)
    return np.asarray(image, dtype=np.uint8)


def _decode(data: bytes | Path, size: int, where: str) -> np.ndarray:
    """A PNG -> uint8 [size, size] greyscale (``resized_array``); one whose header declares too
    many pixels is refused before decoding (``bounded.open_image``)."""
    with open_image(data, where) as image:
        return resized_array(image.convert("L"), size)


def _read_images(entry: _Alphabet, size: int) -> list[np.ndarray]:
    """Decodes every image of one alphabet, character by character; zip members are read within
    their declared size and a cap (``bounded.read_member``)."""
    files, images = [f for chars in entry.characters.values() for f in chars], []
    if entry.source.is_dir():
        for f in files:
            with decoding(entry.source.parent / f):
                images.append(_decode(entry.source.parent / f, size, str(entry.source.parent / f)))
        return images
    with decoding(entry.source), zipfile.ZipFile(entry.source) as archive:
        for f in files:
            with decoding(entry.source, f):
                images.append(_decode(read_member(archive, f, str(entry.source)), size, f"{entry.source}, member {f}"))
    return images


def rotate_classes(store: ImageStore, quarter_turns: Sequence[int]) -> ImageStore:
    """Adds, for each k in ``quarter_turns`` (1..3), every class rotated by k*90 degrees as a
    new class named ``<name>/rot<k*90>`` (labels offset by k-th block of K)."""
    images, labels, names = [store.images], [store.labels], list(store.class_names)
    for block, k in enumerate(quarter_turns, start=1):
        images.append(torch.rot90(store.images, k, dims=(2, 3)))
        labels.append(store.labels + block * store.num_classes)
        names += [f"{name}/rot{90 * k}" for name in store.class_names]
    return ImageStore(torch.cat(images), torch.cat(labels), names, store.source + " +rotations")


def read_omniglot(root: Path, alphabets: Sequence[str], size: int, per_class: int | None) -> ImageStore:
    """The characters of ``alphabets`` as classes ``alphabet/character``."""
    index = index_alphabets(root)
    missing = [a for a in alphabets if a not in index]
    if missing:
        looked = [p.name for p in find_sources(root)] or ["no images_background*/images_evaluation* folder or zip"]
        raise DataFormatError(f"{root}: Omniglot alphabet(s) {missing} not found (looked in {looked})")
    counts = {f"{a}/{c}": len(f) for a in alphabets for c, f in index[a].characters.items()}
    check_class_counts(counts, list(counts), per_class, f"{root} (Omniglot {', '.join(alphabets)})")
    arrays = [img for a in alphabets for img in _read_images(index[a], size)]
    names = list(counts)
    labels = np.repeat(np.arange(len(names)), list(counts.values()))
    images = torch.from_numpy(np.stack(arrays)).unsqueeze(1)
    sources = sorted({index[a].source.name for a in alphabets})
    return ImageStore(images, torch.from_numpy(labels), names, f"omniglot {'+'.join(sources)}")


@DATASETS.register("omniglot")
def load_omniglot(root: Path, split: str, image_size: int | None = None, cache_dir=None,
                  alphabets: Sequence[str] | None = None, rotations: bool | Sequence[str] = False,
                  images_per_class: int | None = None) -> ImageStore:
    """Omniglot characters of the split's alphabets (``data_splits/omniglot.json``) or of
    ``alphabets``; [N, 1, image_size, image_size] (default 28). rotations: add the 90/180/270
    degree rotations as extra classes, in every split (``True``) or only in the splits listed
    (``[train]``: rotated training classes, as the published Omniglot recipes use, while the
    validation split keeps the unrotated characters that test tasks have). images_per_class:
    expected count (default 20)."""
    info = split_info("omniglot")
    chosen = list(alphabets) if alphabets is not None else list(info[canonical_split(split)])
    per_class = images_per_class or info["images_per_class"]
    size = image_size or DEFAULT_SIZE
    sources = find_sources(root)
    if not sources:
        raise DataFormatError(f"no omniglot files found in {root} (looked for images_background*/, "
                              "images_evaluation*/ folders or .zip archives)")
    tag = f"omniglot-{'+'.join(chosen)}-{size}-{per_class}"
    store = cached_store(cache_dir, sources, tag, lambda: read_omniglot(root, chosen, size, per_class))
    return rotate_classes(store, (1, 2, 3)) if rotated_split(rotations, split) else store


def rotated_split(rotations: bool | Sequence[str], split: str) -> bool:
    """Whether ``split`` gets rotated classes under the ``rotations`` option (a bool, or the
    split names that get them); an unknown split name raises naming the option."""
    if isinstance(rotations, bool):
        return rotations
    if isinstance(rotations, str) or not isinstance(rotations, Sequence):
        raise ValueError(f"rotations must be true, false or a list of split names, got {rotations!r}")
    try:
        listed = [canonical_split(name) for name in rotations]
    except ValueError as error:
        raise ValueError(f"rotations: {error}") from None
    return canonical_split(split) in listed
