"""Data files that lead outside their root, and decoded caches that were damaged or edited (issue 28,
cases 8, 9 and 10): a link or a listed path out of the data folder is refused naming the file and
without quoting the target; a cache whose own SHA-256 fails is decoded again, never trusted."""

from __future__ import annotations

import csv
import logging
import os
import zipfile

import numpy as np
import pytest
import torch
from cli_run import run_cli
from PIL import Image

from metahyper.data import DataFormatError, load_store
from metahyper.data.splits import split_info

from .archives import idx_bytes, lake_runs, omniglot_zip
from .test_omniglot import write_set

SECRET = "root:x:0:0:SECRET-FIRST-LINE:/root:/bin/bash"


@pytest.fixture
def secret(tmp_path):
    """A file outside every data root whose content must never reach a message."""
    path = tmp_path / "elsewhere" / "passwd"
    path.parent.mkdir()
    path.write_text(SECRET + "\nsecond line\n")
    return path


def test_a_lake_label_file_linked_outside_the_root_is_refused_unread(tmp_path, secret, capsys):
    """Case 10: class_labels.txt linked to a passwd-like file printed the target's first line."""
    root = lake_runs().write(tmp_path / "lake")
    labels = root / "run01" / "class_labels.txt"
    labels.unlink()
    labels.symlink_to(secret)
    with pytest.raises(DataFormatError) as error:
        load_store("omniglot_lake_runs", root, "test")
    assert str(error.value).startswith(f"{labels}: a link that leads outside the data folder {root}")
    status, _, err = run_cli(capsys, "data", "omniglot_lake_runs", "--root", str(root))
    assert status == 2 and f"{labels}: a link that leads outside" in err
    assert "SECRET" not in str(error.value) + err and str(secret) not in err


def test_an_omniglot_image_or_set_folder_linked_outside_the_root_is_refused(tmp_path):
    root = tmp_path / "omniglot"
    write_set(root, "images_background", {"Alpha": 1}, per_char=2)
    outside = tmp_path / "outside.png"
    Image.new("1", (105, 105), 0).save(outside)
    image = root / "images_background/Alpha/character01/0000_02.png"
    image.unlink()
    image.symlink_to(outside)
    with pytest.raises(DataFormatError, match=f"{image}: a link that leads outside the data folder {root}"):
        load_store("omniglot", root, "train", alphabets=["Alpha"], images_per_class=2)
    other = tmp_path / "other"
    write_set(other, "images_evaluation", {"Beta": 1}, per_char=2)
    (root / "images_evaluation").symlink_to(other / "images_evaluation")
    with pytest.raises(DataFormatError, match=f"{root / 'images_evaluation'}: a link that leads outside"):
        load_store("omniglot", root, "train", alphabets=["Beta"], images_per_class=2)


def test_a_miniimagenet_csv_row_that_climbs_out_of_images_is_refused(tmp_path):
    """Case 10: a CSV row ``../../outside.png`` was read silently."""
    root = tmp_path / "mini"
    (root / "images").mkdir(parents=True)
    classes = split_info("miniimagenet")["test"]
    rows = [(f"{wnid}00000001.png", wnid) for wnid in classes]
    rows[0] = ("../../outside.png", classes[0])
    Image.fromarray(np.zeros((84, 84, 3), np.uint8)).save(tmp_path / "outside.png")
    for name, _ in rows[1:]:
        Image.fromarray(np.zeros((84, 84, 3), np.uint8)).save(root / "images" / name)
    with open(root / "test.csv", "w", newline="") as file:
        csv.writer(file).writerows([("filename", "label"), *rows])
    with pytest.raises(DataFormatError, match=rf"{root / 'test.csv'}: a row names {root / 'images'}/\.\./\.\./"
                                              r"outside\.png: a path that leads outside the data folder"):
        load_store("miniimagenet", root, "test", images_per_class=1)


def test_an_mnist_file_linked_outside_the_root_is_refused(tmp_path):
    root, elsewhere = tmp_path / "mnist", tmp_path / "elsewhere"
    root.mkdir()
    elsewhere.mkdir()
    (elsewhere / "t10k-images-idx3-ubyte").write_bytes(idx_bytes(np.zeros((10, 28, 28)), 2051))
    (root / "t10k-images-idx3-ubyte").symlink_to(elsewhere / "t10k-images-idx3-ubyte")
    (root / "t10k-labels-idx1-ubyte").write_bytes(idx_bytes(np.arange(10), 2049))
    with pytest.raises(DataFormatError, match=f"{root / 't10k-images-idx3-ubyte'}: a link that leads outside"):
        load_store("mnist", root, "test")


def test_a_data_root_that_is_itself_a_link_is_fine(tmp_path):
    real = tmp_path / "real"
    real.mkdir()
    omniglot_zip(real / "images_background.zip", {"Alpha": 2}, per_char=2)
    (tmp_path / "link").symlink_to(real)
    assert len(load_store("omniglot", tmp_path / "link", "train", alphabets=["Alpha"], images_per_class=2)) == 4


@pytest.fixture
def cached(tmp_path):
    """(root, cache folder of its store, the store decoded without a cache)."""
    root = tmp_path / "omniglot"
    root.mkdir()
    omniglot_zip(root / "images_background.zip", {"Alpha": 2}, per_char=2)
    options = {"alphabets": ["Alpha"], "images_per_class": 2}
    reference = load_store("omniglot", root, "train", **options)
    load_store("omniglot", root, "train", cache_dir=tmp_path / "cache", **options)
    (folder,) = (tmp_path / "cache").iterdir()
    return root, folder, reference, options


def _edit_images(folder):
    """Change one pixel of the cached images in place (the file stays a valid .npy)."""
    images = np.load(folder / "images.npy")
    images[0, 0, 0, 0] ^= 0xFF
    np.save(folder / "images.npy", images)


@pytest.mark.parametrize("damage", ["truncated", "edited", "classes.json truncated"])
def test_a_damaged_or_edited_cache_is_decoded_again_and_named(cached, caplog, damage):
    """Cases 8 and 9: a truncated cache ended in a traceback that named no file; an edited one
    was used. Now the cache's own SHA-256 fails, the log names the file, and the store read is
    the sources' (equal to a decode without any cache)."""
    root, folder, reference, options = cached
    if damage == "truncated":
        path = folder / "images.npy"
        path.write_bytes(path.read_bytes()[:200])
    elif damage == "edited":
        path = folder / "images.npy"
        _edit_images(folder)
    else:
        path = folder / "classes.json"
        path.write_text(path.read_text()[:10])
    with caplog.at_level(logging.INFO, logger="metahyper"):
        store = load_store("omniglot", root, "train", cache_dir=folder.parent, **options)
    assert f"{path}" in caplog.text and "decoding the sources again" in caplog.text
    assert torch.equal(store.images, reference.images) and store.class_names == reference.class_names
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="metahyper"):
        again = load_store("omniglot", root, "train", cache_dir=folder.parent, **options)
    assert caplog.text == "" and torch.equal(again.images, reference.images)  # the rebuilt cache is trusted


def test_a_cache_is_keyed_by_its_sources_content(cached):
    """A source changed in place, with its size and time stamp kept, is not served from the cache
    of its old content: it is decoded again (here: found damaged, one byte of a member flipped)."""
    root, folder, _, options = cached
    archive = root / "images_background.zip"
    stat = archive.stat()
    name = "images_background/Alpha/character01/0000_01.png"
    with zipfile.ZipFile(archive) as source:
        info = source.getinfo(name)
    data = bytearray(archive.read_bytes())
    data[info.header_offset + 30 + len(info.filename.encode()) + len(info.extra) + 40] ^= 1
    archive.write_bytes(bytes(data))
    os.utime(archive, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    with pytest.raises(DataFormatError, match=f"{archive}, member {name}: damaged"):
        load_store("omniglot", root, "train", cache_dir=folder.parent, **options)
