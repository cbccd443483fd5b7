"""ImageStore: validation, subset relabelling, resize, fingerprint, summary."""

import pytest
import torch

from metahyper.data import ImageStore


def small_store():
    images = torch.arange(6 * 3 * 2 * 2, dtype=torch.uint8).view(6, 3, 2, 2)
    return ImageStore(images, torch.tensor([0, 1, 2, 0, 1, 2]), ["a", "b", "c"], "toy")


def test_subset_relabels_in_given_order():
    store = small_store()
    sub = store.subset(["c", "a"])
    assert sub.class_names == ["c", "a"] and sub.labels.tolist() == [1, 0, 1, 0]
    assert torch.equal(sub.images, store.images[[0, 2, 3, 5]])
    with pytest.raises(KeyError, match=r"classes not in store \(toy\): \['z'\]"):
        store.subset(["z"])


def test_counts_len_shape_summary():
    store = small_store()
    assert len(store) == 6 and store.num_classes == 3 and store.image_shape == (3, 2, 2)
    assert store.images_per_class.tolist() == [2, 2, 2]
    assert "classes: 3 (a, b, c)" in store.summary() and "images per class: 2..2" in store.summary()


def test_validation_errors():
    images = torch.zeros(2, 1, 2, 2, dtype=torch.uint8)
    with pytest.raises(ValueError, match="images must be uint8"):
        ImageStore(images.float(), torch.tensor([0, 0]), ["a"])
    with pytest.raises(ValueError, match="labels must be int64"):
        ImageStore(images, torch.tensor([0]), ["a"])
    with pytest.raises(ValueError, match=r"labels must lie in 0\.\.0"):
        ImageStore(images, torch.tensor([0, 1]), ["a"])
    with pytest.raises(ValueError, match="duplicates"):
        ImageStore(images, torch.tensor([0, 1]), ["a", "a"])


def test_resized_and_fingerprint():
    store = small_store()
    assert store.resized(2) is store
    big = store.resized(4)
    assert big.images.shape == (6, 3, 4, 4) and big.labels is store.labels
    assert store.fingerprint() == small_store().fingerprint()
    assert store.fingerprint() != store.subset(["a", "b", "c"][::-1]).fingerprint()
