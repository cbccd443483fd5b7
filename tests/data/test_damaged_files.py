"""Damaged data files: every reader names the file (and the archive member) in a DataFormatError,
and the command line turns it into exit status 2 before any training."""

from __future__ import annotations

import csv
import pickle
import subprocess
import sys
import zipfile

import numpy as np
import pytest
from PIL import Image

from data.test_omniglot import write_set
from metahyper.data import DataFormatError, load_store
from metahyper.data.splits import split_info


def _omniglot(tmp_path, as_zip):
    write_set(tmp_path, "images_background", {"Alpha": 1}, per_char=2, as_zip=as_zip)
    return {"alphabets": ["Alpha"], "images_per_class": 2}


def test_omniglot_non_image_png_in_a_folder(tmp_path):
    options = _omniglot(tmp_path, as_zip=False)
    bad = tmp_path / "images_background/Alpha/character01/0007.png"
    bad.write_text("not an image")
    with pytest.raises(DataFormatError, match=rf"{bad}: damaged .*UnidentifiedImageError"):
        load_store("omniglot", tmp_path, "train", **options | {"images_per_class": 3})


def test_omniglot_truncated_zip_names_the_archive(tmp_path):
    options = _omniglot(tmp_path, as_zip=True)
    archive = tmp_path / "images_background.zip"
    archive.write_bytes(archive.read_bytes()[: archive.stat().st_size // 2])
    with pytest.raises(DataFormatError, match=rf"{archive}: damaged .*BadZipFile"):
        load_store("omniglot", tmp_path, "train", **options)


def test_omniglot_damaged_zip_member_names_archive_and_member(tmp_path):
    options = _omniglot(tmp_path, as_zip=True)
    archive = tmp_path / "images_background.zip"
    member = "images_background/Alpha/character01/0000_02.png"
    with zipfile.ZipFile(archive) as source:
        info = source.getinfo(member)
        offset = info.header_offset + 30 + len(info.filename.encode()) + len(info.extra)
    data = bytearray(archive.read_bytes())
    data[offset + 20: offset + 40] = bytes(20)  # inside the member's PNG bytes: bad CRC
    archive.write_bytes(bytes(data))
    with pytest.raises(DataFormatError, match=rf"{archive}, member {member}: damaged"):
        load_store("omniglot", tmp_path, "train", **options)


def _miniimagenet_csv(tmp_path):
    """A 1-image-per-class MiniImageNet test split as CSV + PNG images; returns the files."""
    classes = split_info("miniimagenet")["test"]
    (tmp_path / "images").mkdir()
    rows = [(f"{wnid}00000001.png", wnid) for wnid in classes]
    with open(tmp_path / "test.csv", "w", newline="") as file:
        csv.writer(file).writerows([("filename", "label"), *rows])
    for name, _ in rows:
        Image.fromarray(np.zeros((84, 84, 3), np.uint8)).save(tmp_path / "images" / name)
    return [tmp_path / "images" / name for name, _ in rows]


def test_miniimagenet_csv_with_a_non_image(tmp_path):
    files = _miniimagenet_csv(tmp_path)
    files[3].write_bytes(b"\x00" * 100)
    with pytest.raises(DataFormatError, match=rf"{files[3]}: damaged .*UnidentifiedImageError"):
        load_store("miniimagenet", tmp_path, "test", images_per_class=1)


def test_miniimagenet_binary_csv(tmp_path):
    _miniimagenet_csv(tmp_path)
    (tmp_path / "test.csv").write_bytes(bytes(range(128, 256)))
    with pytest.raises(DataFormatError, match=rf"{tmp_path / 'test.csv'}: damaged .*UnicodeDecodeError"):
        load_store("miniimagenet", tmp_path, "test", images_per_class=1)


@pytest.mark.parametrize("dataset, name", [("miniimagenet", "mini-imagenet-cache-test.pkl"),
                                           ("fc100", "FC100_test.pickle"),
                                           ("cifar100", "cifar-100-python/test")])
def test_truncated_pickles_name_the_file(tmp_path, dataset, name):
    path = tmp_path / name
    path.parent.mkdir(exist_ok=True)
    path.write_bytes(pickle.dumps({"data": np.zeros((50, 3072), np.uint8)}, protocol=2)[:5000])
    if dataset == "cifar100":
        (tmp_path / "cifar-100-python/meta").write_bytes(pickle.dumps({"fine_label_names": ["a"]}))
    with pytest.raises(DataFormatError, match=rf"{path}: not a readable pickle"):
        load_store(dataset, tmp_path, "test")


def test_the_data_command_exits_2_naming_the_damaged_file(tmp_path):
    _omniglot(tmp_path, as_zip=True)
    archive = tmp_path / "images_background.zip"
    archive.write_bytes(archive.read_bytes()[:100])
    result = subprocess.run([sys.executable, "-m", "metahyper.cli", "data", "omniglot", "--root", str(tmp_path),
                             "--option", "alphabets=[Alpha]", "--option", "images_per_class=2"],
                            capture_output=True, text=True)
    assert result.returncode == 2, result.stderr
    assert f"{archive}: damaged" in result.stderr and "Traceback" not in result.stderr
