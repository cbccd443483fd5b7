"""Augmentations for handwritten characters (metahyper.data.distortions) against invariants and
independent references: widening strokes never removes a stroke pixel and equals scipy's grey
erosion, the smoothed displacement field equals scipy's Gaussian filter, a whole-pixel displacement
moves the image by a pixel, erasing sets exactly one rectangle of the allowed size; all of them
deterministic per generator seed and the same on every device."""

import numpy as np
import pytest
import torch
from scipy import ndimage

from metahyper.data import distortions as D


def gen(seed=0):
    return torch.Generator().manual_seed(seed)


def strokes(n=6, size=28, seed=0):
    """White images with a few random dark one-pixel strokes (horizontal and vertical bars)."""
    g = torch.Generator().manual_seed(seed)
    x = torch.ones(n, 1, size, size)
    for i in range(n):
        r, c, length = (int(v) for v in torch.randint(3, size - 10, (3,), generator=g))
        x[i, 0, r, c:c + length] = 0.0
        x[i, 0, r:r + length, c + 2] = 0.2
    return x


def test_widening_never_removes_a_stroke_pixel_and_narrowing_never_adds_one():
    x = strokes()
    one = torch.ones(6, dtype=torch.long)
    wide, narrow = D.stroke_width(x, one), D.stroke_width(x, -one)
    assert (wide <= x).all() and (narrow >= x).all()
    assert (wide < 0.5).sum() > (x < 0.5).sum()  # it does widen
    assert torch.equal(D.stroke_width(x, torch.zeros(6, dtype=torch.long)), x)


def test_stroke_width_is_scipy_grey_morphology_per_image():
    x = torch.rand(5, 1, 12, 12, generator=gen(3))
    change = torch.tensor([2, 1, 0, -1, -2])
    out = D.stroke_width(x, change)
    for image, got, k in zip(x[:, 0].numpy(), out[:, 0].numpy(), change.tolist()):
        size = 2 * abs(k) + 1
        op = ndimage.grey_erosion if k > 0 else ndimage.grey_dilation  # dark strokes: erosion of intensity widens
        expected = op(image, size=(size, size), mode="nearest") if k else image
        np.testing.assert_allclose(got, expected, rtol=0, atol=0)


def test_random_stroke_width_keeps_a_share_of_images_and_changes_the_rest_by_one_pixel():
    x = strokes(n=200)
    out = D.random_stroke_width(x, gen(1), radius=1, p=0.5)
    kept = [bool(torch.equal(o, i)) for o, i in zip(out, x)]
    wide = [bool((o <= i).all() and not torch.equal(o, i)) for o, i in zip(out, x)]
    narrow = [bool((o >= i).all() and not torch.equal(o, i)) for o, i in zip(out, x)]
    assert all(k + w + n == 1 for k, w, n in zip(kept, wide, narrow))
    assert 70 < sum(kept) < 130 and sum(wide) > 30 and sum(narrow) > 30
    assert torch.equal(D.random_stroke_width(x, gen(1)), out) and not torch.equal(D.random_stroke_width(x, gen(2)), out)


def test_smoothed_field_equals_scipy_gaussian_filter_with_zeros_outside():
    field = torch.rand(2, 2, 20, 24, generator=gen(4), dtype=torch.float64) * 2 - 1
    sigma = 2.5
    ours = D.smooth(field, sigma).numpy()
    radius = int(np.ceil(3 * sigma))
    for b in range(2):
        for k in range(2):
            expected = ndimage.gaussian_filter(field[b, k].numpy(), sigma, mode="constant", cval=0.0, radius=radius)
            np.testing.assert_allclose(ours[b, k], expected, rtol=0, atol=1e-12)


def test_displacing_by_whole_pixels_shifts_the_image_and_zero_keeps_it():
    x = torch.rand(2, 1, 9, 9, generator=gen(5))
    assert torch.allclose(D.displace(x, torch.zeros(2, 2, 9, 9)), x, atol=1e-6)
    shift = torch.zeros(2, 2, 9, 9)
    shift[:, 0] = 1.0  # sample one column to the right: the image moves one pixel left
    out = D.displace(x, shift)
    assert torch.allclose(out[..., :-1], x[..., 1:], atol=1e-6)
    assert torch.allclose(out[..., -1], x[..., -1], atol=1e-6)  # the border repeats


def test_random_elastic_is_deterministic_keeps_white_white_and_is_identity_at_alpha_zero(device):
    x = strokes(n=8).to(device)
    out = D.random_elastic(x, gen(6), p=1.0)
    assert torch.allclose(out.cpu(), D.random_elastic(x.cpu(), gen(6), p=1.0), atol=1e-5)  # the CPU's draws
    assert not torch.allclose(out, x) and out.min() >= 0 and out.max() <= 1
    white = torch.ones(3, 1, 28, 28, device=device)
    assert torch.allclose(D.random_elastic(white, gen(7), p=1.0), white)
    assert torch.allclose(D.random_elastic(x, gen(6), alpha=0.0, p=1.0), x, atol=1e-6)
    kept = D.random_elastic(x, gen(8), p=0.0)
    assert torch.allclose(kept, x, atol=1e-6)


def test_erasing_sets_one_rectangle_of_the_allowed_size_to_the_fill():
    x = torch.rand(300, 1, 28, 28, generator=gen(9)) * 0.5  # no pixel equals the fill 1.0
    out = D.random_erasing(x, gen(10), p=0.5, area=(0.02, 0.4), ratio=0.3, value=1.0)
    erased = 0
    for before, after in zip(x[:, 0], out[:, 0]):
        mask = after != before
        if not mask.any():
            continue
        erased += 1
        rows, cols = mask.any(dim=1).nonzero().flatten(), mask.any(dim=0).nonzero().flatten()
        h, w = int(rows[-1] - rows[0] + 1), int(cols[-1] - cols[0] + 1)
        assert int(mask.sum()) == h * w and (after[mask] == 1.0).all()  # one filled rectangle
        assert h * w <= 0.4 * 28 * 28 + 28 and h * w >= 1
    assert 110 < erased < 190
    assert torch.equal(D.random_erasing(x, gen(10)), out)


def test_boxes_follow_zhong_et_al_area_and_aspect_ranges_when_they_fit():
    boxes = D.erasing_boxes(2000, 100, 100, gen(11), (0.02, 0.1), 0.5)
    area = (boxes[:, 2] * boxes[:, 3]).double() / 1e4
    aspect = boxes[:, 2].double() / boxes[:, 3]
    assert area.min() > 0.015 and area.max() < 0.11 and abs(area.mean() - 0.06) < 0.005
    assert aspect.min() > 0.45 and aspect.max() < 2.2
    assert (boxes[:, 0] + boxes[:, 2] <= 100).all() and (boxes[:, 1] + boxes[:, 3] <= 100).all()


@pytest.mark.parametrize("step, options, message", [
    (D.RandomStrokeWidth, {"radius": 0}, "RandomStrokeWidth option radius"),
    (D.RandomStrokeWidth, {"p": 1.5}, "RandomStrokeWidth option p"),
    (D.RandomElastic, {"sigma": 0.0}, "RandomElastic needs sigma > 0"),
    (D.RandomErasing, {"area": (0.5, 0.2)}, "RandomErasing needs 0 < area"),
])
def test_bad_options_name_the_step(step, options, message):
    with pytest.raises(ValueError, match=message):
        step(**options)


def test_steps_need_float_images_and_a_generator():
    with pytest.raises(ValueError, match="random_elastic expects float"):
        D.RandomElastic()(torch.zeros(1, 1, 4, 4, dtype=torch.uint8), gen())
    with pytest.raises(ValueError, match="RandomErasing is random"):
        D.RandomErasing()(torch.zeros(1, 1, 4, 4))
