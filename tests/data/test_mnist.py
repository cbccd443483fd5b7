"""MNIST from IDX files: generated files in every layout, malformed files, the real test set."""

from __future__ import annotations

import gzip
import os
from pathlib import Path

import numpy as np
import pytest
from cli_run import run_cli

from metahyper.data import DataFormatError, load_store

from .archives import idx_bytes, mnist_files

REAL_COUNTS = [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]  # ../shared/data/README.md


def real_mnist_dir() -> Path:
    candidates = [Path(os.environ["METAHYPER_DATA"]) / "mnist"] if os.environ.get("METAHYPER_DATA") else []
    candidates.append(Path(__file__).resolve().parents[3] / "shared" / "data" / "mnist")
    for folder in candidates:
        if (folder / "t10k-images-idx3-ubyte.gz").is_file():
            return folder
    pytest.skip(f"real MNIST test files not found (looked in {[str(c) for c in candidates]}; set METAHYPER_DATA)")


@pytest.mark.parametrize("layout", ["gz", "plain", "torchvision"])
def test_generated_idx_pixels_and_labels(tmp_path, layout):
    written = mnist_files(tmp_path, {"t10k": 30})["t10k"]
    root = tmp_path
    if layout == "plain":
        for path in tmp_path.glob("*.gz"):
            path.with_suffix("").write_bytes(gzip.decompress(path.read_bytes()))
            path.unlink()
    elif layout == "torchvision":
        root = tmp_path / "top"
        (root / "MNIST" / "raw").mkdir(parents=True)
        for path in tmp_path.glob("*.gz"):
            path.rename(root / "MNIST" / "raw" / path.name)
    store = load_store("mnist", root, "test")
    assert store.class_names == [str(d) for d in range(10)]
    labels = np.arange(30) % 10  # what mnist_files wrote, image i has label i % 10
    for digit in range(10):
        rows = store.labels.numpy() == digit
        np.testing.assert_array_equal(store.images[rows, 0].numpy(), written[labels == digit])
    inverted = load_store("mnist", root, "test", invert=True)
    np.testing.assert_array_equal(inverted.images.numpy(), 255 - store.images.numpy())


def test_train_files_and_missing_splits(tmp_path):
    mnist_files(tmp_path, {"train": 20})
    assert len(load_store("mnist", tmp_path, "test", files="train")) == 20
    with pytest.raises(DataFormatError, match="no MNIST file t10k-images-idx3-ubyte"):
        load_store("mnist", tmp_path, "test")
    with pytest.raises(ValueError, match="no 'train' split.*all in the 'test' split"):
        load_store("mnist", tmp_path, "train")


@pytest.mark.parametrize("problem, match", [
    ("magic", "t10k-images-idx3-ubyte: magic number 2049, expected 2051"),
    ("truncated", "t10k-images-idx3-ubyte: 1000 bytes, expected 7856 for 10 items"),
    ("shape", r"items of shape \(27, 28\), expected \(28, 28\)"),
    ("count", "10 images, but .*t10k-labels-idx1-ubyte has 9 labels"),
    ("label", "label 12 outside 0..9"),
])
def test_malformed_files_name_the_file(tmp_path, problem, match):
    images = np.zeros((10, 28, 28), np.uint8)
    labels = np.arange(10)
    image_file = idx_bytes(images, 2051)
    if problem == "magic":
        image_file = idx_bytes(images, 2049)
    elif problem == "truncated":
        image_file = image_file[:1000]
    elif problem == "shape":
        image_file = idx_bytes(np.zeros((10, 27, 28), np.uint8), 2051)
    elif problem == "count":
        labels = labels[:9]
    elif problem == "label":
        labels = np.array([12] * 10)
    (tmp_path / "t10k-images-idx3-ubyte").write_bytes(image_file)
    (tmp_path / "t10k-labels-idx1-ubyte").write_bytes(idx_bytes(labels, 2049))
    with pytest.raises(DataFormatError, match=match):
        load_store("mnist", tmp_path, "test")


def test_real_mnist_test_set():
    store = load_store("mnist", real_mnist_dir(), "test")
    assert store.images_per_class.tolist() == REAL_COUNTS
    assert store.image_shape == (1, 28, 28)
    # white digits on black: most pixels are background 0, the mean is far below mid-grey
    assert (store.images == 0).float().mean() > 0.75


def test_metahyper_data_reads_the_only_split_by_default(tmp_path, capsys):
    mnist_files(tmp_path, {"t10k": 30})
    status, out, err = run_cli(capsys, "data", "mnist", "--root", str(tmp_path))
    assert status == 0, err
    assert out == run_cli(capsys, "data", "mnist", "--root", str(tmp_path), "--split", "test")[1]
    assert "images: 30 x (1, 28, 28)" in out and "classes: 10 " in out
