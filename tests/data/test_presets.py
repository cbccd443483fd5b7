"""The transform presets against hand computation: fixed (x - 0.5) / 0.25 for the episodic
pipelines, the training store's own channel statistics (numpy) for classification."""

import numpy as np
import pytest
import torch

from metahyper.data import ImageStore
from metahyper.data import distortions, presets, transforms


def _images(seed=0, n=6, channels=3, size=5):
    return torch.randint(0, 256, (n, channels, size, size), dtype=torch.uint8, generator=torch.Generator().manual_seed(seed))


def test_episodic_presets_normalise_with_fixed_statistics():
    x = _images()
    expected = (x.double().numpy() / 255 - 0.5) / 0.25
    np.testing.assert_allclose(presets.test_transform(3)(x).numpy(), expected, rtol=0, atol=1e-6)
    np.testing.assert_allclose(presets.train_transform(3, False)(x).numpy(), expected, rtol=0, atol=1e-6)


def test_augmented_preset_flips_or_shifts_by_at_most_pad_pixels():
    x = _images(size=8)
    out = presets.train_transform(3, True)(x, torch.Generator().manual_seed(1))
    plain = presets.test_transform(3)(x)
    black = (0 - 0.5) / 0.25
    for got, image in zip(out, plain):  # some shift of the padded image, possibly mirrored
        padded = torch.nn.functional.pad(image, (4, 4, 4, 4), value=black)
        crops = [padded[:, i:i + 8, j:j + 8] for i in range(9) for j in range(9)]
        assert any(torch.allclose(got, c, atol=1e-6) or torch.allclose(got, c.flip(-1), atol=1e-6) for c in crops)


def test_affine_preset_warps_the_float_image_before_normalising():
    """``affine``: the same draws as ``RandomAffine`` on the [0, 1] image (its generator state
    after nothing else), then (x - 0.5) / 0.25; unknown names are refused naming the values."""
    x = _images(size=8)
    out = presets.train_transform(3, "affine")(x, torch.Generator().manual_seed(2))
    warped = transforms.random_affine(x.float() / 255, torch.Generator().manual_seed(2))
    torch.testing.assert_close(out, (warped - 0.5) / 0.25, rtol=0, atol=1e-6)
    with pytest.raises(ValueError, match="crop_flip"):
        presets.train_transform(3, "flip")


def test_classification_presets_use_the_training_store_statistics():
    train = ImageStore(_images(1, n=10), torch.zeros(10, dtype=torch.int64), ["a"])
    pixels = train.images.double().numpy() / 255
    mean, std = pixels.mean(axis=(0, 2, 3)), pixels.std(axis=(0, 2, 3))
    x = _images(2)
    _, test_tf = presets.store_transforms(train, augment=True, pad=4)
    expected = (x.double().numpy() / 255 - mean[:, None, None]) / std[:, None, None]
    np.testing.assert_allclose(test_tf(x).numpy(), expected, rtol=0, atol=1e-5)


def test_composed_presets_apply_the_named_steps_in_the_order_written_from_one_generator():
    x = _images(channels=1, size=12)
    out = presets.train_transform(1, "stroke+affine+erase")(x, torch.Generator().manual_seed(3))
    g = torch.Generator().manual_seed(3)
    expected = distortions.random_stroke_width(x.float() / 255, g)
    expected = distortions.random_erasing(transforms.random_affine(expected, g), g)
    torch.testing.assert_close(out, (expected - 0.5) / 0.25, rtol=0, atol=1e-6)
    assert presets.augment_names("elastic+affine") == ["elastic", "affine"] and presets.augment_names(True) == \
        ["crop_flip"]


@pytest.mark.parametrize("bad", ["affine+affine", "affine+", "elastc", 3])
def test_bad_augmentation_names_list_the_known_ones(bad):
    with pytest.raises(ValueError, match=r"augment must be .*'stroke', 'elastic', 'erase'"):
        presets.augment_names(bad)


def test_denormalized_augments_normalised_images_in_zero_one_units():
    """Test-time augmentation: undo (x - 0.5) / 0.25, augment, normalise again."""
    x = presets.test_transform(1)(_images(channels=1, size=10))
    out = presets.denormalized(1, "stroke")(x, torch.Generator().manual_seed(4))
    expected = distortions.random_stroke_width(x * 0.25 + 0.5, torch.Generator().manual_seed(4))
    torch.testing.assert_close(out, (expected - 0.5) / 0.25, rtol=0, atol=1e-5)
    with pytest.raises(ValueError, match="crop_flip works on uint8"):
        presets.denormalized(1, "crop_flip")
