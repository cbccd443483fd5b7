"""Batched transforms against hand-computed values and independent references (PIL); the random
ones on every device (``device`` fixture), drawing from CPU generators, give the CPU's numbers."""

import numpy as np
import pytest
import torch
from PIL import Image

from metahyper.data import TaskBatch, transforms as T


def gen(seed=0):
    return torch.Generator().manual_seed(seed)


def _mapped(batch, transform, generator):
    return batch.map_images(lambda x: transform(x, generator))


def test_to_float_and_normalize_by_hand():
    x = torch.tensor([0, 51, 255], dtype=torch.uint8).view(1, 3, 1, 1)
    assert torch.allclose(T.to_float(x).flatten(), torch.tensor([0.0, 0.2, 1.0]))
    y = T.normalize(torch.full((2, 3, 1, 1), 0.5), mean=(0.25, 0.5, 0.0), std=(0.5, 1.0, 0.25))
    assert torch.allclose(y[0].flatten(), torch.tensor([0.5, 0.0, 2.0]))
    with pytest.raises(ValueError, match="expects uint8"):
        T.to_float(torch.zeros(1, 1, 1, 1))


def test_resize_matches_pil_antialiased_bilinear():
    rng = np.random.default_rng(0)
    pixels = rng.integers(0, 256, (37, 41), dtype=np.uint8)
    ours = T.resize(torch.from_numpy(pixels).view(1, 1, 37, 41), 16)[0, 0].numpy().astype(int)
    pil = np.asarray(Image.fromarray(pixels).resize((16, 16), Image.BILINEAR)).astype(int)
    assert np.abs(ours - pil).max() <= 1
    constant = torch.full((2, 5, 3, 8, 8), 0.25)
    assert torch.allclose(T.resize(constant, 3), torch.full((2, 5, 3, 3, 3), 0.25))


def test_pad_crop_outputs_are_crops_of_the_padded_image(device):
    x = torch.arange(1, 2 * 2 * 5 * 5 + 1, dtype=torch.float32).view(2, 2, 5, 5).repeat(8, 1, 1, 1)
    out = T.random_pad_crop(x.to(device), 2, gen(1)).cpu()
    assert out.shape == x.shape
    offsets = set()
    for i in range(len(x)):
        padded = torch.zeros(2, 9, 9)
        padded[:, 2:7, 2:7] = x[i]
        hits = [(r, c) for r in range(5) for c in range(5) if torch.equal(padded[:, r:r + 5, c:c + 5], out[i])]
        assert len(hits) == 1
        offsets.add(hits[0])
    assert len(offsets) > 4  # offsets are drawn per image
    assert torch.equal(T.random_pad_crop(x, 2, gen(1)), out)
    assert torch.equal(T.random_pad_crop(x, 0, gen(1)), x)


def test_hflip_per_image(device):
    x = torch.arange(64 * 3 * 2 * 4, dtype=torch.float32).view(64, 3, 2, 4)
    out = T.random_hflip(x.to(device), gen(2)).cpu()
    flipped = [torch.equal(out[i], x[i].flip(-1)) for i in range(64)]
    kept = [torch.equal(out[i], x[i]) for i in range(64)]
    assert all(f != k for f, k in zip(flipped, kept)) and 10 < sum(flipped) < 54
    assert torch.equal(T.random_hflip(x, gen(2), p=1.0), x.flip(-1))
    assert torch.equal(T.random_hflip(x, gen(2), p=0.0), x)
    assert x[0, 0, 0].flip(-1).tolist() == [3.0, 2.0, 1.0, 0.0]


def test_color_jitter_identity_and_range(device):
    x = torch.rand(6, 3, 4, 4, generator=gen(3))
    assert torch.allclose(T.color_jitter(x.to(device), gen(4), brightness=0.0, contrast=0.0).cpu(), x)
    out = T.color_jitter(x.to(device), gen(4), brightness=0.8, contrast=0.8).cpu()
    assert out.min() >= 0 and out.max() <= 1 and not torch.allclose(out, x)
    factors = torch.rand(6, 2, generator=gen(4)) * 2 - 1  # the draws, by hand: brightness then contrast
    bright = x * (1 + 0.8 * factors[:, 0]).view(-1, 1, 1, 1)
    mean = bright.mean(dim=(1, 2, 3), keepdim=True)
    hand = ((bright - mean) * (1 + 0.8 * factors[:, 1]).view(-1, 1, 1, 1) + mean).clamp(0, 1)
    torch.testing.assert_close(out, hand, rtol=1e-6, atol=1e-6)


def test_map_images_transforms_support_then_query_with_one_generator():
    support = torch.randint(0, 256, (1, 4, 1, 5, 5), dtype=torch.uint8, generator=gen(1))
    query = torch.randint(0, 256, (1, 6, 1, 5, 5), dtype=torch.uint8, generator=gen(2))
    batch = TaskBatch(support, torch.zeros(1, 4, dtype=torch.int64), query, torch.zeros(1, 6, dtype=torch.int64))
    out = _mapped(batch, T.RandomHFlip(), gen(3))
    draws = torch.rand(10, generator=gen(3)) < 0.5  # one draw per image: the 4 support images, then the 6 query
    flipped = [torch.where(d, x.flip(-1), x) for d, x in zip(draws, torch.cat([support[0], query[0]]))]
    assert torch.equal(out.support_x[0], torch.stack(flipped[:4])) and torch.equal(out.query_x[0], torch.stack(flipped[4:]))
    assert out.support_y is batch.support_y and out.query_y is batch.query_y


def test_compose_on_task_batch_keeps_labels_and_shapes(device):
    support = torch.randint(0, 256, (2, 5, 3, 8, 8), dtype=torch.uint8, generator=gen(5))
    query = torch.randint(0, 256, (2, 10, 3, 8, 8), dtype=torch.uint8, generator=gen(6))
    labels_s, labels_q = torch.arange(5).repeat(2, 1), torch.arange(10).repeat(2, 1)
    cpu_batch = TaskBatch(support, labels_s, query, labels_q)
    batch = cpu_batch.to(device)
    support, labels_s, labels_q = batch.support_x, batch.support_y, batch.query_y
    pipeline = T.Compose([T.ToFloat(), T.RandomPadCrop(4), T.RandomHFlip(), T.ColorJitter(),
                          T.Normalize((0.5,) * 3, (0.25,) * 3)])
    out = _mapped(batch, pipeline, gen(7))
    assert out.support_x.shape == support.shape and out.query_x.dtype == torch.float32
    assert out.support_y is labels_s and out.query_y is labels_q and out.query_x.device.type == device.type
    again = _mapped(batch, pipeline, gen(7))
    assert torch.equal(out.query_x, again.query_x)
    on_cpu = _mapped(cpu_batch, pipeline, gen(7))  # same draws: the CPU's numbers
    torch.testing.assert_close(out.query_x.cpu(), on_cpu.query_x, rtol=1e-6, atol=1e-6)
    plain = _mapped(batch, T.Compose([T.ToFloat(), T.Normalize((0.5,) * 3, (0.25,) * 3)]), None)
    assert torch.allclose(plain.support_x, (support.float() / 255 - 0.5) / 0.25)
    with pytest.raises(ValueError, match="RandomHFlip is random: pass a torch.Generator"):
        T.RandomHFlip()(support.float())


def test_warp_affine_by_hand():
    """Hand-computed warps: the identity, a quarter turn ([[0, -1], [1, 0]] with y pointing down
    is a clockwise turn: numpy's rot90 with k=-1) and a one-pixel shift to the right whose
    uncovered column repeats the border pixels."""
    x = torch.rand(3, 2, 6, 6)
    identity, still = torch.eye(2, dtype=torch.float64).expand(3, 2, 2), torch.zeros(3, 2, dtype=torch.float64)
    torch.testing.assert_close(T.warp_affine(x, identity, still), x, atol=1e-6, rtol=0)
    quarter = torch.tensor([[0.0, -1.0], [1.0, 0.0]], dtype=torch.float64).expand(3, 2, 2)
    turned = np.rot90(x.numpy(), k=-1, axes=(2, 3))
    np.testing.assert_allclose(T.warp_affine(x, quarter, still).numpy(), turned, atol=1e-6)
    one_pixel = torch.tensor([2 / 6, 0.0], dtype=torch.float64).expand(3, 2)
    shifted = T.warp_affine(x, identity, one_pixel)
    torch.testing.assert_close(shifted[..., 1:], x[..., :-1], atol=1e-6, rtol=0)
    torch.testing.assert_close(shifted[..., 0], x[..., 0], atol=1e-6, rtol=0)


def test_affine_draws_koch_components_each_with_probability_p():
    """Koch et al.'s ranges: with p=0 every draw is the identity; with p=1 every component lies
    in its range and differs from neutral; at p=0.5 about half the rotations are kept; the same
    generator seed gives the same draws."""
    gen = lambda: torch.Generator().manual_seed(3)  # noqa: E731
    linear, shift = T.affine_matrices(500, gen(), 10.0, 0.3, (0.8, 1.2), 2 / 105, p=0.0)
    assert torch.equal(linear, torch.eye(2, dtype=torch.float64).expand(500, 2, 2)) and not shift.any()
    linear, shift = T.affine_matrices(500, gen(), 10.0, 0.0, (1.0, 1.0), 0.0, p=1.0)
    angles = torch.rad2deg(torch.atan2(linear[:, 1, 0], linear[:, 0, 0]))  # a pure rotation here
    assert angles.abs().max() <= 10 and (angles != 0).all() and angles.std() > 4
    _, shift = T.affine_matrices(500, gen(), 0.0, 0.0, (1.0, 1.0), 2 / 105, p=1.0)
    assert shift.abs().max() <= 2 * 2 / 105 + 1e-12
    linear, _ = T.affine_matrices(4000, gen(), 10.0, 0.0, (1.0, 1.0), 0.0, p=0.5)
    assert abs((linear[:, 1, 0] != 0).double().mean().item() - 0.5) < 0.03
    again, _ = T.affine_matrices(4000, gen(), 10.0, 0.0, (1.0, 1.0), 0.0, p=0.5)
    assert torch.equal(linear, again)


def test_random_affine_step_needs_float_and_a_generator():
    step = T.RandomAffine()
    with pytest.raises(ValueError, match="float images"):
        step(torch.zeros(2, 1, 4, 4, dtype=torch.uint8), torch.Generator())
    with pytest.raises(ValueError, match="pass a torch.Generator"):
        step(torch.zeros(2, 1, 4, 4))
    images = torch.rand(2, 5, 1, 8, 8)  # [tasks, n, C, H, W] keeps its shape
    assert step(images, torch.Generator().manual_seed(0)).shape == images.shape
