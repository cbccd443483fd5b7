"""``metahyper data fetch``: download public data sets with torchvision's downloader and checksums.

The URLs and md5 checksums are torchvision's own (``torchvision.datasets.Omniglot.zips_md5``,
``CIFAR10/CIFAR100.url/tgz_md5``, ``MNIST.mirrors/resources``), read from the installed
torchvision, and the bytes are moved by ``torchvision.datasets.utils.download_url``: no HTTP
client of our own. Omniglot's two small background sets are in the
same repository as the full archives but torchvision publishes no checksum for them; they are
checked as zip archives (every member's CRC) with the ``<set>/<alphabet>/<character>/*.png``
layout instead, unless the caller supplies a checksum. So is Lake's ``all_runs.zip``
(``omniglot_lake_runs``, from the same repository under torchvision's Omniglot URL prefix),
whose layout check is the reader's own (``omniglot_lake_runs.check_archive``: every run, label
line and image).

Every resource is fetched into a hidden temporary folder beside its target (``.fetch-*`` in the
root), verified, extracted there if it is an archive (every member checked first, none may
reach outside that folder: ``metahyper.data.archives``), and only then renamed into place, so a
failed, truncated or interrupted download never leaves a file or folder that looks complete;
a rerun fetches exactly the resources whose targets are still absent.
``mirror`` (or ``$METAHYPER_MIRROR``) replaces the host and path of every URL, keeping the file
name. ``checksums`` ({file name: md5}) replaces or adds expected checksums (tests serving
generated archives use it; the real table stays torchvision's).
"""

from __future__ import annotations

import http.client
import os
import shutil
import tarfile
import tempfile
import urllib.error
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Mapping, Sequence

from metahyper.config import did_you_mean
from metahyper.data.archives import UnsafeArchive, extract_tar, extract_zip
from metahyper.data.sources import DATASETS, DataFormatError
from metahyper.installed import require_torchvision
from metahyper.resources import MIRROR_ENV


class FetchError(DataFormatError):
    """A download failed or did not verify; the message names the file and the checksums."""


@dataclass(frozen=True)
class Resource:
    """One downloadable file: its name, torchvision's md5 (None: none published), the URLs
    tried in order, and ``target``, the path under the root that exists once it is in place
    (the file itself, or the folder an archive extracts to). ``part`` groups resources a
    reader needs together (e.g. MNIST's ``t10k`` pair). ``layout(path)`` says what is wrong
    with a zip that has no md5 to check (None: nothing), after its members' CRCs passed."""

    filename: str
    md5: str | None
    urls: tuple[str, ...]
    target: str
    part: str = ""
    layout: Callable[[Path], str | None] | None = None

    @property
    def extract(self) -> bool:
        return self.target != self.filename


def _omniglot() -> list[Resource]:
    from torchvision.datasets import Omniglot

    sets = {**Omniglot.zips_md5, "images_background_small1": None, "images_background_small2": None}
    full = ("images_background", "images_evaluation")
    return [Resource(f"{name}.zip", md5, (f"{Omniglot.download_url_prefix}/{name}.zip",), f"{name}.zip",
                     "full" if name in full else "small", _omniglot_layout) for name, md5 in sets.items()]


def _omniglot_layout(path: Path) -> str | None:
    with zipfile.ZipFile(path) as archive:
        pngs = [n for n in archive.namelist() if n.endswith(".png") and n.count("/") == 3]
    return None if pngs else "no <set>/<alphabet>/<character>/*.png members"


def _lake_runs() -> list[Resource]:
    from torchvision.datasets import Omniglot

    from metahyper.data.omniglot_lake_runs import ARCHIVE, check_archive

    url = f"{Omniglot.download_url_prefix}/one-shot-classification/{ARCHIVE}"
    return [Resource(ARCHIVE, None, (url,), ARCHIVE, layout=check_archive)]


def _cifar(cls_name: str) -> Callable[[], list[Resource]]:
    def resources() -> list[Resource]:
        import torchvision.datasets as tvd

        cls = getattr(tvd, cls_name)
        return [Resource(cls.filename, cls.tgz_md5, (cls.url,), cls.base_folder)]
    return resources


def _mnist() -> list[Resource]:
    from torchvision.datasets import MNIST

    return [Resource(name, md5, tuple(m + name for m in MNIST.mirrors), name, name.split("-")[0])
            for name, md5 in MNIST.resources]


TABLE: dict[str, Callable[[], list[Resource]]] = {
    "omniglot": _omniglot, "cifar10": _cifar("CIFAR10"), "cifar100": _cifar("CIFAR100"),
    "fc100": _cifar("CIFAR100"), "mnist": _mnist, "omniglot_lake_runs": _lake_runs,
}


def resources(dataset: str, parts: Sequence[str] | None = None) -> list[Resource]:
    """The resources of ``dataset`` (those of ``parts`` only, when given)."""
    if dataset not in TABLE:
        raise ValueError(f"cannot fetch {dataset!r}{did_you_mean(dataset, TABLE)}; MiniImageNet has no stable "
                         "official download (see docs/data.md, 'MiniImageNet')")
    require_torchvision()  # the URLs, checksums and downloader are torchvision's
    found = TABLE[dataset]()
    return [r for r in found if parts is None or r.part in parts]


def mirror_urls(resource: Resource, mirror: str | None) -> tuple[str, ...]:
    """The URLs to try: the mirror's (host and path replaced, file name kept) or the originals."""
    mirror = mirror or os.environ.get(MIRROR_ENV) or None
    return (f"{mirror.rstrip('/')}/{resource.filename}",) if mirror else resource.urls


def _download(resource: Resource, folder: Path, urls: Sequence[str], expected: str | None) -> Path:
    """Downloads ``resource`` into ``folder`` from the first URL that answers."""
    from torchvision.datasets.utils import download_url

    errors = []
    for url in urls:
        try:
            download_url(url, str(folder), resource.filename)
            return folder / resource.filename
        except (urllib.error.URLError, http.client.HTTPException, OSError) as err:
            (folder / resource.filename).unlink(missing_ok=True)
            code = f"HTTP {err.code} " if isinstance(err, urllib.error.HTTPError) else f"{type(err).__name__}: "
            errors.append(f"{url}: {code}{getattr(err, 'reason', None) or err}")
    raise FetchError(f"{resource.filename}: download failed (expected md5 {expected or 'none published'}); "
                     + "; ".join(errors))


def _verify(path: Path, expected: str | None, layout: Callable[[Path], str | None] | None) -> None:
    """md5 against ``expected``; without one, a readable zip whose members pass their CRCs and
    whose content passes ``layout``."""
    from torchvision.datasets.utils import calculate_md5

    if expected is not None:
        actual = calculate_md5(str(path))
        if actual != expected.lower():
            raise FetchError(f"{path.name}: checksum mismatch: expected md5 {expected}, got {actual} "
                             f"({path.stat().st_size} bytes; truncated or a different file)")
        return
    try:
        with zipfile.ZipFile(path) as archive:
            bad = archive.testzip()
        problem = f"member {bad} fails its CRC" if bad else layout(path) if layout else None
    except (zipfile.BadZipFile, OSError, EOFError) as err:
        raise FetchError(f"{path.name}: not a readable zip archive ({err}); no md5 is published for it, "
                         f"actual md5 {calculate_md5(str(path))}") from None
    if problem:
        raise FetchError(f"{path.name}: {problem}; actual md5 {calculate_md5(str(path))}")


def _extract(archive: Path, folder: Path, inner: str) -> Path:
    """Extracts ``archive`` (a tar, compressed or not, or a zip) into ``folder`` once every
    member passed ``check_members`` (``metahyper.data.archives``); returns ``folder/inner``,
    which the archive must contain."""
    try:
        if tarfile.is_tarfile(archive):
            extract_tar(archive, folder)
        elif zipfile.is_zipfile(archive):
            extract_zip(archive, folder)
        else:
            raise FetchError(f"{archive.name}: cannot be extracted (neither a tar nor a zip archive)")
    except UnsafeArchive as err:
        raise FetchError(f"{archive.name}: refused: {err}; nothing was extracted") from None
    except (tarfile.TarError, zipfile.BadZipFile, EOFError, OSError) as err:
        raise FetchError(f"{archive.name}: cannot be extracted ({type(err).__name__}: {err})") from None
    if not (folder / inner).exists():
        raise FetchError(f"{archive.name}: the archive holds no {inner}/")
    return folder / inner


def present(resource: Resource, root: Path) -> bool:
    """Whether the resource's target is in place (for a zip, also its extracted folder)."""
    target = root / resource.target
    return target.exists() or (target.suffix == ".zip" and target.with_suffix("").is_dir())


def fetch_resource(resource: Resource, root: Path, mirror: str | None = None,
                   checksums: Mapping[str, str] | None = None) -> bool:
    """Puts ``resource`` in place under ``root`` unless its target exists; returns whether it
    downloaded. Raises ``FetchError``; nothing but the hidden temporary folder (removed) is
    written before the final rename."""
    target = root / resource.target
    if present(resource, root):
        return False
    root.mkdir(parents=True, exist_ok=True)
    for stale in root.glob(f".fetch-{resource.filename}-*"):  # left by a killed earlier fetch
        shutil.rmtree(stale, ignore_errors=True)
    expected = (checksums or {}).get(resource.filename, resource.md5)
    work = Path(tempfile.mkdtemp(dir=root, prefix=f".fetch-{resource.filename}-"))
    try:
        path = _download(resource, work, mirror_urls(resource, mirror), expected)
        _verify(path, expected, resource.layout)
        if resource.extract:
            path = _extract(path, work / "extracted", resource.target)
        os.replace(path, target)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return True


def fetch(dataset: str, root: str | Path, mirror: str | None = None, checksums: Mapping[str, str] | None = None,
          parts: Sequence[str] | None = None, log: Callable[[str], None] = print,
          fc100_images_per_class: int | None = None) -> list[Path]:
    """Fetches every absent resource of ``dataset`` (of ``parts`` only, when given) into
    ``root``; for ``fc100`` then reads the three FC100 splits from ``cifar-100-python/`` with
    the package's reader as a check (``fc100_images_per_class``: the count it expects,
    default 600). Returns the targets."""
    root = Path(root)
    found = resources(dataset, parts)
    for resource in found:
        fetched = fetch_resource(resource, root, mirror, checksums)
        log(f"{dataset}: {resource.target} {'fetched and verified' if fetched else 'already present'}")
    if dataset == "fc100":
        for split in ("train", "val", "test"):
            store = DATASETS.build("fc100", root=root, split=split, image_size=None, cache_dir=None,
                                   images_per_class=fc100_images_per_class)
            log(f"fc100 {split}: {store.num_classes} classes, {len(store)} images")
    return [root / r.target for r in found]


# Files that mean a data root already holds a data set in another layout the readers accept.
_OTHER_LAYOUTS = {"cifar10": ("data_batch_1",), "cifar100": ("train",),
                  "fc100": ("FC100_train.pickle", "train"), "omniglot_lake_runs": ("run01",)}
# The resources each dataset name of a suite needs: Omniglot's small sets for ``omniglot``
# (data_splits/omniglot.json), the full archives for ``omniglot_full``; MNIST's ``files`` pair.
_SUITE_PARTS = {"omniglot": ("omniglot", ("small",)), "omniglot_full": ("omniglot", ("full",))}


def fetch_command(dataset: str, root: str) -> str | None:
    """The command that fetches what ``dataset`` needs into ``root``, or None if it cannot be fetched."""
    fetched = _SUITE_PARTS.get(dataset, (dataset, None))[0]
    return f"metahyper data fetch {fetched} --root {root}" if fetched in TABLE else None


def fetch_for_spec(dataset: str, root: str | None, options: Mapping[str, object], mirror: str | None = None,
                   checksums: Mapping[str, str] | None = None, log: Callable[[str], None] = print) -> list[Path]:
    """``--download`` for one data spec of a suite: fetches what ``dataset`` needs into
    ``root`` unless the root holds it already. Data sets that cannot be fetched and roots
    naming unset environment variables are left to the suite's own checks."""
    fetched, parts = _SUITE_PARTS.get(dataset, (dataset, None))
    if dataset == "mnist":
        parts = (str(options.get("files", "t10k")),)
    if fetched not in TABLE or not root:
        return []
    path = Path(os.path.expandvars(os.path.expanduser(root)))
    if "$" in str(path) or any((path / name).exists() for name in _OTHER_LAYOUTS.get(dataset, ())):
        return []
    return fetch(fetched, path, mirror, checksums, parts=parts, log=log)
