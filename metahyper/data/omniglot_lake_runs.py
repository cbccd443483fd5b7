"""Lake et al.'s 20 official Omniglot one-shot classification runs (dataset ``omniglot_lake_runs``).

The layout of ``all_runs.zip`` in github.com/brendenlake/omniglot
(``python/one-shot-classification/``): folders ``run01`` .. ``run20``, each holding
``training/class01.png`` .. ``class20.png`` (one 105x105 image per class), ``test/item01.png`` ..
``item20.png`` and ``class_labels.txt``, whose lines are ``runNN/test/itemMM.png
runNN/training/classKK.png`` (a test image and the training image of its class). Read from
``ROOT/all_runs/``, from run folders directly in ``ROOT``, or from ``ROOT/all_runs.zip`` (its
members with or without a top folder).

Read as that repository's ``demo_classification.py`` reads them: the paths in
``class_labels.txt`` are relative to the folder holding the run folders (the demo runs there);
the training images, sorted by file name, are the run's classes; a pixel is ink exactly where
the image, read as greyscale floats (PIL mode ``F``, what ``scipy.ndimage.imread(flatten=True)``
gives), is 0. So strokes are 0 on a 255 background, as in ``omniglot.py``, and images are then
resized the same way (``omniglot.resized_array``, default 28x28). The demo pairs the sorted test
files with the lines' answers in line order, which agrees with the published files (their lines
are in item order); here every test image takes the answer of its own line.

Everything is checked before any image is decoded, with ``DataFormatError`` naming the file and
line: a missing run or file, a line without exactly two fields, a path outside its run or its
folder, a test image listed twice or not at all, a training image that answers no line, a count
other than 20; and every image must be 105x105.

The store: per run, its 20 training images (labels in sorted order) then its 20 test images in
``class_labels.txt``'s line order (labels = their answers); classes ``runNN/classKK``; 800 images.
``lake_run_episodes`` turns it into the 20 fixed 20-way 1-shot episodes with 20 queries that the
literature scores, reported as an error rate (``FIXED_EPISODES``).
"""

from __future__ import annotations

import io
import re
import zipfile
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Iterator

import numpy as np
import torch
from PIL import Image

from metahyper.config import clip
from metahyper.data.bounded import MAX_IMAGE_FILE_BYTES, MAX_TEXT_FILE_BYTES, read_bounded, read_member
from metahyper.data.confine import confined
from metahyper.data.episodes import FIXED_EPISODES, DataEpisodes, EpisodeSet
from metahyper.data.omniglot import DEFAULT_SIZE, NATIVE, resized_array
from metahyper.data.sources import DATASETS, DataFormatError, decoding
from metahyper.data.stores import ImageStore, cached_store

ARCHIVE, FOLDER, LABELS = "all_runs.zip", "all_runs", "class_labels.txt"
RUNS, WAY = 20, 20
RUN_NAMES = tuple(f"run{r:02d}" for r in range(1, RUNS + 1))
_RUN = re.compile(r"^run\d+$")


class RunFiles:
    """The files of the run folders in a folder or a zip: ``files`` maps each path relative to
    the folder holding the runs (``run01/test/item01.png``) to where it is (a file path, or the
    zip member's name); ``where(name)`` describes it in messages; ``read(names)`` gives their
    bytes. Hidden files (``.DS_Store``, macOS ``._*`` copies, a zip's ``__MACOSX/``) are not runs' files."""

    def __init__(self, path: Path, root: Path):
        self.path = path
        if path.is_dir():
            self.files = {p.relative_to(path).as_posix(): str(confined(root, p)) for p in sorted(path.glob("run*/**/*"))
                          if p.is_file() and _RUN.match(p.relative_to(path).parts[0]) and not p.name.startswith(".")}
            return
        with decoding(path), zipfile.ZipFile(path) as archive:
            names = [n for n in archive.namelist() if not n.endswith("/") and not n.rsplit("/", 1)[-1].startswith(".")]
        prefixes = {n[: n.index(part)] for n in names for part in n.split("/")[:2] if _RUN.match(part)}
        prefixes = {p for p in prefixes if not p.startswith("__MACOSX")}  # macOS metadata, not runs
        if len(prefixes) != 1:
            found = "no runNN/ folder" if not prefixes else f"run folders under several folders {sorted(prefixes)}"
            raise DataFormatError(f"{path}: {found} (expected run01/ .. run{RUNS:02d}/, optionally inside one folder)")
        prefix = prefixes.pop()
        self.files = {n[len(prefix):]: n for n in names
                      if n.startswith(prefix) and _RUN.match(n[len(prefix):].split("/")[0])}

    def where(self, name: str) -> str:
        if self.path.is_dir():
            return str(self.path / name)
        return f"{self.path}, member {self.files.get(name, name)}"

    def read(self, names: list[str]) -> Iterator[bytes]:
        """The bytes of each of ``names`` in turn (a zip is opened once), each refused unread past
        the size its kind may have (``bounded``: a label file, an image)."""
        if self.path.is_dir():
            for name in names:
                with decoding(self.files[name]), open(self.files[name], "rb") as file:
                    data = read_bounded(file, _cap(name))
                if len(data) > _cap(name):
                    raise DataFormatError(f"{self.where(name)}: more than the {_cap(name)} bytes such a file may have")
                yield data
            return
        with decoding(self.path), zipfile.ZipFile(self.path) as archive:
            for name in names:
                with decoding(self.path, self.files[name]):
                    yield read_member(archive, self.files[name], str(self.path), _cap(name))


def _cap(name: str) -> int:
    """The most bytes the run file ``name`` may have: a label list or an image."""
    return MAX_TEXT_FILE_BYTES if name.endswith(".txt") else MAX_IMAGE_FILE_BYTES


@dataclass(frozen=True)
class Run:
    """One run: its training images (sorted; the k-th is class k) and its queries (test image,
    class index) in ``class_labels.txt``'s line order."""

    name: str
    classes: tuple[str, ...]
    queries: tuple[tuple[str, int], ...]


def find_runs(root: Path) -> Path:
    """Where the runs are: ``ROOT/all_runs/``, ``ROOT`` itself (run folders in it), or
    ``ROOT/all_runs.zip``; inside ``ROOT`` (``confined``)."""
    for folder in (root / FOLDER, root):
        if folder.is_dir() and any(p.is_dir() and _RUN.match(p.name) for p in folder.iterdir()):
            confined(root, folder)
            return folder
    if (root / ARCHIVE).is_file():
        confined(root, root / ARCHIVE)
        return root / ARCHIVE
    raise DataFormatError(f"no Lake one-shot runs in {root} (looked for {FOLDER}/run01/, run01/ and {ARCHIVE}); "
                          f"get them with `metahyper data fetch omniglot_lake_runs --root {root}`")


def _in_run(path: str, run: str, folder: str, at: str) -> str:
    """``path`` from a label line, checked to be ``<run>/<folder>/<name>.png``."""
    parts = PurePosixPath(path).parts
    if len(parts) != 3 or parts[0] != run or parts[1] != folder or not parts[2].endswith(".png"):
        raise DataFormatError(f"{at}: {path!r} is not a {run}/{folder}/*.png path (outside its run or folder)")
    return "/".join(parts)


def _pngs(source: RunFiles, run: str, folder: str) -> list[str]:
    prefix = f"{run}/{folder}/"
    return sorted(f for f in source.files if f.startswith(prefix) and f.count("/") == 2 and f.endswith(".png"))


def _label_lines(source: RunFiles, run: str) -> tuple[str, list[str]]:
    """(where class_labels.txt is, its lines); a missing run or file names what is missing."""
    labels = f"{run}/{LABELS}"
    if labels not in source.files:
        present = any(f.startswith(f"{run}/") for f in source.files)
        what = f"{labels} is missing" if present else f"run {run} is missing"
        raise DataFormatError(f"{source.path}: {what} (expected run01 .. run{RUNS:02d}, each with {LABELS})")
    where = source.where(labels)
    try:
        return where, next(source.read([labels])).decode("utf-8").splitlines()
    except UnicodeDecodeError as error:
        raise DataFormatError(f"{where}: not a text file ({error})") from None


def parse_run(source: RunFiles, run: str) -> Run:
    """Reads and checks ``<run>/class_labels.txt`` against the run's image files (module docstring)."""
    where, lines = _label_lines(source, run)
    classes, items = _pngs(source, run, "training"), set(_pngs(source, run, "test"))
    seen: dict[str, int] = {}
    queries = []
    for number, line in enumerate(lines, start=1):
        at, fields = f"{where} line {number}", line.split()
        if len(fields) != 2:
            raise DataFormatError(f"{at}: expected 2 fields (test image, training image), got {len(fields)}: "
                                  f"{clip(repr(line))}")
        item, answer = _in_run(fields[0], run, "test", at), _in_run(fields[1], run, "training", at)
        if item in seen:
            raise DataFormatError(f"{at}: {item} is listed twice (first on line {seen[item]})")
        for path in (item, answer):
            if path not in source.files:
                raise DataFormatError(f"{at}: {path} does not exist")
        seen[item] = number
        queries.append((item, classes.index(answer)))
    unlisted = sorted(items - set(seen))
    if unlisted:
        raise DataFormatError(f"{where}: test image(s) {', '.join(unlisted[:3])} not listed")
    for folder, count in (("training", len(classes)), ("test", len(items))):
        if count != WAY:
            raise DataFormatError(f"{source.path}: {run}/{folder}/ holds {count} .png images, expected {WAY}")
    answered = {k for _, k in queries}
    unused = [c for k, c in enumerate(classes) if k not in answered]
    if unused:
        raise DataFormatError(f"{where}: training image(s) {', '.join(unused[:3])} answer no line (a class without "
                              "a test image)")
    return Run(run, tuple(classes), tuple(queries))


def parse_runs(source: RunFiles) -> list[Run]:
    """Every run, checked; a run folder beyond run01 .. run20 is refused."""
    extra = sorted({f.split("/")[0] for f in source.files} - set(RUN_NAMES))
    if extra:
        raise DataFormatError(f"{source.path}: unexpected run folder(s) {', '.join(extra[:3])} (the published set is "
                              f"run01 .. run{RUNS:02d})")
    return [parse_run(source, run) for run in RUN_NAMES]


def decode_image(data: bytes, size: int, where: str) -> np.ndarray:
    """A 105x105 run image -> uint8 [size, size]: ink (0) where its greyscale float value is 0, else
    255 (the demo's binarisation), then resized as ``omniglot.py`` resizes."""
    with Image.open(io.BytesIO(data)) as image:
        if image.size != (NATIVE, NATIVE):
            raise DataFormatError(f"{where}: image is {image.size[0]}x{image.size[1]}, expected {NATIVE}x{NATIVE}")
        ink = np.asarray(image.convert("F")) == 0
    return resized_array(Image.fromarray(np.where(ink, 0, 255).astype(np.uint8), "L"), size)


def read_runs(path: Path, size: int, root: Path | None = None) -> ImageStore:
    """The store of the runs in ``path`` (a folder holding the run folders, or the zip), whose
    files must lie inside ``root`` (default: ``path`` itself, or the zip's folder)."""
    source = RunFiles(path, root or (path if path.is_dir() else path.parent))
    runs = parse_runs(source)
    images, labels = [], []
    files = [(name, r * WAY + k) for r, run in enumerate(runs)
             for name, k in (*((c, k) for k, c in enumerate(run.classes)), *run.queries)]
    for (name, label), data in zip(files, source.read([name for name, _ in files])):
        with decoding(source.where(name)):
            images.append(decode_image(data, size, source.where(name)))
        labels.append(label)
    names = [f"{run.name}/{PurePosixPath(c).stem}" for run in runs for c in run.classes]
    return ImageStore(torch.from_numpy(np.stack(images)).unsqueeze(1), torch.tensor(labels), names,
                      f"omniglot_lake_runs {path} ({RUNS} runs)")


@DATASETS.register("omniglot_lake_runs")
def load_omniglot_lake_runs(root: Path, split: str = "test", image_size: int | None = None,
                            cache_dir=None) -> ImageStore:
    """Lake's 20 one-shot runs as one store (module docstring): [800, 1, s, s] with s =
    image_size (default 28). They are a test set only: ``split`` must be ``test``."""
    if split != "test":
        raise ValueError(f"omniglot_lake_runs has only a 'test' split (Lake's evaluation runs), got {split!r}")
    size, path = image_size or DEFAULT_SIZE, find_runs(root)
    return cached_store(cache_dir, [path], f"omniglot_lake_runs-{size}", lambda: read_runs(path, size, root))


def lake_run_episodes(store: ImageStore) -> EpisodeSet:
    """The 20 runs of an ``omniglot_lake_runs`` store as fixed 20-way 1-shot episodes with one
    query per class: episode r's support rows are run r's training images (label k: class k),
    its query rows its test images in ``class_labels.txt``'s line order, with their answers."""
    per_run = 2 * WAY
    if store.num_classes != RUNS * WAY or len(store) != RUNS * per_run:
        raise ValueError(f"store {store.source!r} is not an omniglot_lake_runs store ({RUNS} runs x {per_run} "
                         f"images, {RUNS * WAY} classes)")
    rows = torch.arange(len(store)).view(RUNS, per_run)
    labels = store.labels.view(RUNS, per_run) - WAY * torch.arange(RUNS)[:, None]
    support, query = labels[:, :WAY], labels[:, WAY:].sort(dim=1).values
    if not (torch.equal(support, torch.arange(WAY).expand(RUNS, -1)) and torch.equal(query, support)):
        raise ValueError(f"store {store.source!r}: rows are not in omniglot_lake_runs' order (per run: the "
                         f"{WAY} classes, then one test image of each)")
    return EpisodeSet(rows, labels, WAY, 1, 1, 0, "test", store.fingerprint())


FIXED_EPISODES.register("omniglot_lake_runs")(DataEpisodes(lake_run_episodes, "error_rate"))


def check_archive(path: Path) -> str | None:
    """What is wrong with a downloaded ``all_runs.zip`` (its layout, label files and images), or None."""
    try:
        read_runs(path, DEFAULT_SIZE)
    except DataFormatError as error:
        return str(error)
    return None
