"""Synthetic data: determinism, shapes, distinct splits and families, learnable but not trivial."""

import pytest
import torch

from metahyper.data import EpisodeSampler, load_store, make_synthetic


def test_deterministic_and_seed_dependent():
    a = make_synthetic("source", "train", num_classes=3, images_per_class=4, image_size=16, seed=1)
    b = make_synthetic("source", "train", num_classes=3, images_per_class=4, image_size=16, seed=1)
    c = make_synthetic("source", "train", num_classes=3, images_per_class=4, image_size=16, seed=2)
    assert torch.equal(a.images, b.images) and not torch.equal(a.images, c.images)
    more = make_synthetic("source", "train", num_classes=5, images_per_class=4, image_size=16, seed=1)
    assert torch.equal(more.images[:12], a.images)  # a class does not depend on how many there are


@pytest.mark.parametrize("size", [32, 84])
def test_shapes_and_names(size):
    store = load_store("synthetic", None, "val", image_size=size, family="target", images_per_class=3)
    assert store.images.shape == (16 * 3, 3, size, size) and store.images.dtype == torch.uint8
    assert store.class_names[0] == "target-val-000" and store.images_per_class.tolist() == [3] * 16
    assert store.images.float().std() > 20  # not blank


def test_splits_and_families_differ():
    def params(family, split):
        return make_synthetic(family, split, num_classes=4, images_per_class=2, image_size=16)
    train, test = params("source", "train"), params("source", "test")
    assert not set(train.class_names) & set(test.class_names)
    assert not torch.equal(train.images, test.images)
    assert not torch.equal(train.images, params("target", "train").images)
    with pytest.raises(ValueError, match="family must be one of"):
        make_synthetic("other")


def prototype_accuracy(store, features, episodes=60):
    """5-way 5-shot nearest-prototype accuracy with fixed features [B, C, H, W] -> [B, D]."""
    batch = EpisodeSampler(store, 5, 5, 10, seed=0, split_name="test").sample(episodes)
    support = features(batch.support_x.flatten(0, 1).float() / 255).view(episodes, 25, -1)
    query = features(batch.query_x.flatten(0, 1).float() / 255).view(episodes, 50, -1)
    protos = support.view(episodes, 5, 5, -1).mean(2)
    return (torch.cdist(query, protos).argmin(-1) == batch.query_y).float().mean().item()


def mean_colour(x):
    return x.mean((2, 3))


def spectrum(x):
    """Phase- and position-invariant structure: log |FFT| of the grey image."""
    grey = x.mean(1)
    return torch.log1p(torch.fft.fft2(grey - grey.mean((1, 2), keepdim=True)).abs()).flatten(1)


@pytest.mark.parametrize("family", ["source", "target"])
def test_learnable_from_structure_not_from_colour(family):
    store = make_synthetic(family, "test", images_per_class=30, image_size=32)
    structure, colour = prototype_accuracy(store, spectrum), prototype_accuracy(store, mean_colour)
    assert structure > 0.6  # chance is 0.2
    assert colour < 0.7 and colour < structure
