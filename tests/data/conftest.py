"""Fixtures for the data-layer tests: tiny files in each real on-disk format, and the real
Omniglot archives when they exist."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from metahyper.data.splits import split_info

from .helpers import cifar_rows, dump

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def mini_pickle(tmp_path):
    """A MiniImageNet validation cache (16 classes x 2 images) with class rows shuffled.

    Returns (root, image_data uint8 [32, 84, 84, 3], {wnid: rows})."""
    rng = np.random.default_rng(0)
    wnids = split_info("miniimagenet")["val"]
    images = rng.integers(0, 256, (2 * len(wnids), 84, 84, 3), dtype=np.uint8)
    perm = rng.permutation(len(images))
    class_dict = {w: [int(perm[2 * k]), int(perm[2 * k + 1])] for k, w in enumerate(reversed(wnids))}
    dump(tmp_path / "mini-imagenet-cache-validation.pkl", {"image_data": images, "class_dict": class_dict})
    return tmp_path, images, class_dict


@pytest.fixture
def fc100_pickle(tmp_path):
    """FC100_val.pickle (20 fine classes x 2 images, labels in shuffled order, protocol 2 as
    the Python 2 originals). Returns (root, data uint8 [40, 32, 32, 3], fine labels [40])."""
    rng = np.random.default_rng(1)
    fine = np.array(split_info("fc100")["fine_ids"]["val"] * 2)
    rng.shuffle(fine)
    data = rng.integers(0, 256, (len(fine), 32, 32, 3), dtype=np.uint8)
    dump(tmp_path / "FC100_val.pickle", {"data": data, "labels": [int(f) for f in fine]}, protocol=2)
    return tmp_path, data, fine


@pytest.fixture
def cifar100_dir(tmp_path):
    """cifar-100-python/{train,test,meta}: 2 train + 1 test image per fine class.

    Returns (root, {'train': (hwc, fine, coarse), 'test': ...})."""
    info = split_info("fc100")
    rng = np.random.default_rng(2)
    written = {}
    for name, copies in (("train", 2), ("test", 1)):
        fine = np.tile(np.arange(100), copies)
        rng.shuffle(fine)
        coarse = np.asarray(info["cifar100_fine_to_coarse"])[fine]
        hwc = rng.integers(0, 256, (len(fine), 32, 32, 3), dtype=np.uint8)
        batch = {"data": cifar_rows(hwc), "fine_labels": fine.tolist(), "coarse_labels": coarse.tolist(),
                 "filenames": [f"img{i}.png" for i in range(len(fine))], "batch_label": name}
        dump(tmp_path / "cifar-100-python" / name, batch, protocol=2)
        written[name] = (hwc, fine, coarse)
    meta = {"fine_label_names": info["cifar100_fine_names"], "coarse_label_names": info["cifar100_coarse_names"]}
    dump(tmp_path / "cifar-100-python" / "meta", meta, protocol=2)
    return tmp_path, written
