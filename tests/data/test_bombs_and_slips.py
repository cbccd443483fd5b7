"""Hostile archives and compressed files (issue 28, cases 2 and 4): ``data fetch`` refuses an archive
whose members would land outside its root (served from 127.0.0.1), and a zip member, a gzip
stream or an image header that declares or holds far more than its kind of file needs is refused
before it is read, within 300 MB of the memory the same command takes on a valid file."""

from __future__ import annotations

import gzip
import io
import json
import tarfile
import zipfile
from pathlib import Path

import numpy as np
import pytest
from cli_run import run_cli
from peak_memory import MARGIN_MB, peak_memory
from PIL import Image

from metahyper.data import DataFormatError, load_store
from metahyper.data.archives import UnsafeArchive, extract_zip
from metahyper.data.bounded import MAX_IMAGE_FILE_BYTES, MAX_PIXELS

from .archives import LocalServer, cifar10_tarball, idx_bytes, md5, omniglot_zip

BOMB_MB = 512  # what a bomb inflates to: more than the 300 MB margin, made in about a second from zeros


def _zeros(stream, megabytes: int) -> None:
    chunk = bytes(1 << 20)
    for _ in range(megabytes):
        stream.write(chunk)


# --- case 2: members outside the root ---------------------------------------------------------------


def _slip_tarball(folder: Path, kind: str, outside: Path) -> Path:
    """cifar-10-python.tar.gz (a valid one) with one more member that leaves the extraction folder."""
    folder.mkdir(parents=True)
    path = cifar10_tarball(folder, per_batch=2)
    with tarfile.open(path) as source:
        members = [(m, source.extractfile(m).read() if m.isfile() else None) for m in source.getmembers()]
    bad = tarfile.TarInfo({"parent": "../../../outside/escaped.txt", "absolute": str(outside)}.get(kind, "x"))
    if kind == "symlink":
        bad = tarfile.TarInfo("cifar-10-batches-py/escape")
        bad.type, bad.linkname = tarfile.SYMTYPE, str(outside.parent)
    payload = b"written outside the data root"
    bad.size = 0 if kind == "symlink" else len(payload)
    with tarfile.open(path, "w:gz") as archive:
        for member, data in members:
            archive.addfile(member, io.BytesIO(data) if data is not None else None)
        archive.addfile(bad, io.BytesIO(payload) if kind != "symlink" else None)
    return path


@pytest.mark.parametrize("kind", ["parent", "absolute", "symlink"])
def test_fetch_refuses_a_tar_member_that_leaves_the_root(tmp_path, capsys, kind):
    outside = tmp_path / "outside" / "escaped.txt"
    outside.parent.mkdir()
    tarball = _slip_tarball(tmp_path / "mirror", kind, outside)
    checksums = tmp_path / "md5.json"
    checksums.write_text(json.dumps({tarball.name: md5(tarball)}))  # the user vouches for the bytes, not the layout
    root = tmp_path / "data"
    with LocalServer(tmp_path / "mirror") as server:
        status, out, err = run_cli(capsys, "data", "fetch", "cifar10", "--root", str(root), "--mirror", server.url,
                                   "--checksums", str(checksums))
    assert status == 2 and f"{tarball.name}: refused: member " in err and "nothing was extracted" in err, err
    assert ("is a link" in err) if kind == "symlink" else ("would be written outside the extraction folder" in err)
    assert list(outside.parent.iterdir()) == [] and list(root.iterdir()) == []  # no escape, no leftovers


def test_a_zip_member_that_climbs_is_refused_before_anything_is_written(tmp_path):
    archive = tmp_path / "slip.zip"
    with zipfile.ZipFile(archive, "w") as source:
        source.writestr("data/ok.txt", b"fine")
        source.writestr("../escaped.txt", b"outside")
    (tmp_path / "into").mkdir()
    with pytest.raises(UnsafeArchive, match="member '../escaped.txt' would be written outside"):
        extract_zip(archive, tmp_path / "into")
    assert list((tmp_path / "into").iterdir()) == [] and not (tmp_path / "escaped.txt").exists()


# --- case 4: decompression bombs ---------------------------------------------------------------------


@pytest.fixture(scope="module")
def omniglot_roots(tmp_path_factory) -> tuple[Path, Path]:
    """(valid, bomb): one-character Omniglot zips; the bomb's character has a third image, a member
    that inflates from ~0.5 MB to 512 MB."""
    valid, bomb = (tmp_path_factory.mktemp(name) for name in ("valid", "bomb"))
    omniglot_zip(valid / "images_background.zip", {"Alpha": 1}, per_char=2)
    omniglot_zip(bomb / "images_background.zip", {"Alpha": 1}, per_char=2)
    with zipfile.ZipFile(bomb / "images_background.zip", "a", zipfile.ZIP_DEFLATED) as archive:
        with archive.open("images_background/Alpha/character01/0000_03.png", "w", force_zip64=True) as member:
            _zeros(member, BOMB_MB)
    assert (bomb / "images_background.zip").stat().st_size < 4 << 20
    return valid, bomb


def test_a_zip_member_bomb_is_refused_unread_within_the_memory_of_a_valid_zip(omniglot_roots):
    valid, bomb = omniglot_roots
    member = "images_background/Alpha/character01/0000_03.png"
    with pytest.raises(DataFormatError, match=f"member {member}: declares {BOMB_MB << 20} bytes uncompressed, more "
                                              f"than the {MAX_IMAGE_FILE_BYTES}"):
        load_store("omniglot", bomb, "train", alphabets=["Alpha"], images_per_class=3)
    options = ["--option", "alphabets=[Alpha]", "--split", "train"]
    status, err, bomb_mb = peak_memory("data", "omniglot", "--root", str(bomb), *options,
                                       "--option", "images_per_class=3")
    assert status == 2 and "decompression bomb" in err and "Traceback" not in err, err
    status, err, valid_mb = peak_memory("data", "omniglot", "--root", str(valid), *options,
                                        "--option", "images_per_class=2")
    assert status == 0, err
    assert bomb_mb < valid_mb + MARGIN_MB, (bomb_mb, valid_mb)


def test_a_zip_member_that_inflates_past_its_declared_size_stops_there(tmp_path):
    """A member whose header understates its size: zipfile stops at the declared size, and the
    CRC no longer matches: refused, naming the member."""
    path = omniglot_zip(tmp_path / "images_background.zip", {"Alpha": 1}, per_char=2)
    name = "images_background/Alpha/character01/0000_01.png"
    data = bytearray(path.read_bytes())
    with zipfile.ZipFile(path) as archive:
        local = archive.getinfo(name).header_offset
    central = data.index(b"PK\x01\x02", data.index(name.encode(), local + 30 + len(name)) - 46)
    assert data[central + 46: central + 46 + len(name)] == name.encode()  # the member's central directory record
    for offset in (local + 22, central + 24):  # its uncompressed size in the local header and the central directory
        data[offset: offset + 4] = (10).to_bytes(4, "little")
    path.write_bytes(bytes(data))
    with pytest.raises(DataFormatError, match=f"{path}, member {name}: damaged .*BadZipFile"):
        load_store("omniglot", tmp_path, "train", alphabets=["Alpha"], images_per_class=2)


@pytest.fixture(scope="module")
def mnist_roots(tmp_path_factory) -> tuple[Path, Path]:
    """(valid, bomb): MNIST t10k pairs of 10 digits; the bomb's image stream goes on with 512 MB of
    zeros after the 7,840 bytes its header declares."""
    valid, bomb = (tmp_path_factory.mktemp(name) for name in ("mnist-valid", "mnist-bomb"))
    images = np.random.default_rng(0).integers(0, 256, (10, 28, 28), dtype=np.uint8)
    for root in (valid, bomb):
        (root / "t10k-labels-idx1-ubyte.gz").write_bytes(gzip.compress(idx_bytes(np.arange(10), 2049)))
        with gzip.open(root / "t10k-images-idx3-ubyte.gz", "wb", compresslevel=1) as stream:
            stream.write(idx_bytes(images, 2051))
            if root == bomb:
                _zeros(stream, BOMB_MB)
    return valid, bomb


def test_a_gzip_bomb_is_refused_after_its_declared_size_within_the_memory_of_a_valid_file(mnist_roots):
    valid, bomb = mnist_roots
    path = bomb / "t10k-images-idx3-ubyte.gz"
    with pytest.raises(DataFormatError, match=f"{path}: longer than the 7856 bytes its header declares for 10 items"):
        load_store("mnist", bomb, "test")
    status, err, bomb_mb = peak_memory("data", "mnist", "--root", str(bomb), "--split", "test")
    assert status == 2 and "decompression bomb" in err and "Traceback" not in err, err
    status, err, valid_mb = peak_memory("data", "mnist", "--root", str(valid), "--split", "test")
    assert status == 0, err
    assert bomb_mb < valid_mb + MARGIN_MB, (bomb_mb, valid_mb)


def test_an_idx_header_that_declares_billions_of_items_is_refused_unread(tmp_path):
    header = np.array([2051, 2**31 - 1, 28, 28], dtype=">i4").tobytes()
    (tmp_path / "t10k-images-idx3-ubyte").write_bytes(header + bytes(100))
    (tmp_path / "t10k-labels-idx1-ubyte").write_bytes(idx_bytes(np.arange(10), 2049))
    with pytest.raises(DataFormatError, match="header declares 2147483647 items; an MNIST file holds 0..100000"):
        load_store("mnist", tmp_path, "test")


def test_an_image_whose_header_declares_too_many_pixels_is_refused_before_decoding(tmp_path):
    folder = tmp_path / "images_background" / "Alpha" / "character01"
    folder.mkdir(parents=True)
    Image.new("1", (105, 105), 1).save(folder / "0000_01.png")
    Image.new("1", (5000, 5000), 1).save(folder / "0000_02.png")  # 25 million pixels in ~30 KB
    with pytest.raises(DataFormatError, match=f"{folder / '0000_02.png'}: image of 5000x5000 pixels, more than the "
                                              f"{MAX_PIXELS}"):
        load_store("omniglot", tmp_path, "train", alphabets=["Alpha"], images_per_class=2)
