"""ImageStore.from_dataset / from_arrays and the torchvision transforms.v2 adapter."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image
from torchvision.datasets import FakeData, ImageFolder
from torchvision.transforms import v2
from torchvision.transforms.v2 import functional as TF

from metahyper.data import ImageStore, transforms


def test_from_dataset_reads_an_image_folder_pixel_for_pixel(tmp_path):
    rng = np.random.default_rng(0)
    written = {}
    for name in ("cat", "dog"):
        (tmp_path / name).mkdir()
        for i in range(3):
            pixels = rng.integers(0, 256, (5, 4, 3), dtype=np.uint8)
            Image.fromarray(pixels).save(tmp_path / name / f"{i}.png")
            written[(name, i)] = pixels
    store = ImageStore.from_dataset(ImageFolder(str(tmp_path)))
    assert store.class_names == ["cat", "dog"] and store.image_shape == (3, 5, 4)
    assert store.labels.tolist() == [0, 0, 0, 1, 1, 1]  # ImageFolder's order: class, then file name
    for row, key in enumerate(sorted(written)):
        assert np.array_equal(store.images[row].permute(1, 2, 0).numpy(), written[key])


def test_from_dataset_takes_float_tensors_and_refuses_mixed_shapes():
    data = FakeData(size=6, image_size=(3, 4, 4), num_classes=3, transform=v2.Compose([
        v2.PILToTensor(), v2.ToDtype(torch.float32, scale=True)]))
    store = ImageStore.from_dataset(data)
    raw = FakeData(size=6, image_size=(3, 4, 4), num_classes=3)
    assert torch.equal(store.images[0], torch.from_numpy(np.asarray(raw[0][0]).copy()).permute(2, 0, 1))
    mixed = [(torch.zeros(3, 4, 4, dtype=torch.uint8), 0), (torch.zeros(3, 5, 5, dtype=torch.uint8), 1)]
    with pytest.raises(ValueError, match="several shapes"):
        ImageStore.from_dataset(mixed)


def test_from_arrays_relabels_sorted_labels_and_reads_channels_last():
    images = np.arange(4 * 2 * 3 * 1, dtype=np.uint8).reshape(4, 2, 3, 1)
    store = ImageStore.from_arrays(images, [7, 3, 7, 9], channels_last=True)
    assert store.class_names == ["3", "7", "9"] and store.labels.tolist() == [1, 0, 1, 2]
    assert store.image_shape == (1, 2, 3) and torch.equal(store.images[2, 0], torch.from_numpy(images[2, :, :, 0]))
    named = ImageStore.from_arrays(images[:, :, :, 0], [1, 0, 1, 0], class_names=["a", "b"])
    assert named.class_names == ["a", "b"] and named.image_shape == (1, 2, 3)
    with pytest.raises(ValueError, match="must be uint8"):
        ImageStore.from_arrays(images.astype(np.float32), [0, 0, 0, 0])
    with pytest.raises(ValueError, match="labels must index class_names"):
        ImageStore.from_arrays(images, [0, 1, 2, 5], class_names=["a", "b", "c"], channels_last=True)


def test_torchvision_adapter_matches_torchvision_and_is_keyed_on_the_generator():
    x = torch.randint(0, 256, (2, 3, 3, 8, 8), dtype=torch.uint8, generator=torch.Generator().manual_seed(0))
    fixed = transforms.Torchvision(v2.Compose([v2.Resize(4, antialias=True), v2.ToDtype(torch.float32, scale=True)]))
    expected = torch.stack([TF.to_dtype(TF.resize(img, [4], antialias=True), torch.float32, scale=True)
                            for img in x.reshape(-1, 3, 8, 8)]).reshape(2, 3, 3, 4, 4)
    assert torch.equal(fixed(x), expected)
    crop = transforms.Torchvision(v2.RandomResizedCrop(4, antialias=True))
    before = torch.get_rng_state()
    a = crop(x, torch.Generator().manual_seed(5))
    assert torch.equal(torch.get_rng_state(), before)  # the caller's global RNG is untouched
    assert torch.equal(a, crop(x, torch.Generator().manual_seed(5)))
    assert not torch.equal(a, crop(x, torch.Generator().manual_seed(6)))
