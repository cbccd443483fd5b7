"""Augmentations for handwritten characters beyond Koch et al.'s affine distortions (issue 26).

Float images in [0, 1] with dark strokes on a white background (Omniglot: background 1.0,
strokes 0.0 after ``ToFloat``), any leading dims [..., C, H, W]. Every step is batched on the
batch's device and draws its random numbers from the CPU ``torch.Generator`` it is given (never
the global RNG), like the steps of ``metahyper.data.transforms``, so a seed gives the same images
on every device:

* ``random_stroke_width``: each image's strokes thickened or thinned by a whole pixel
  (grey-level morphology: dilation of the dark strokes is a min-pool of the intensities over a
  (2r+1)-square, erosion a max-pool), so a model sees the pen widths of different drawers;
* ``random_elastic``: Simard, Steinkraus & Platt's elastic distortions ("Best practices for
  convolutional neural networks applied to visual document analysis", ICDAR 2003): a random
  displacement field, uniform in [-1, 1] per pixel and axis, smoothed by a Gaussian of std
  ``sigma`` and scaled by ``alpha`` (sigma 4, alpha 34 on 28-pixel MNIST digits, their best
  setting; both are fractions of the image side here, so a 105-pixel image is distorted alike);
* ``random_erasing``: Zhong et al.'s random erasing ("Random Erasing Data Augmentation", AAAI
  2020): with probability ``p`` a rectangle of area fraction in [``area_low``, ``area_high``] and
  aspect ratio in [``ratio``, 1 / ``ratio``] is filled. They fill with random values (natural
  images); here the fill is the white background by default, so erasing deletes stroke parts
  rather than drawing noise that a character never has.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor

from metahyper.data.imageops import flat_images
from metahyper.data.transforms import _need_generator as need_generator

SIMARD_SIGMA, SIMARD_ALPHA, SIMARD_SIDE = 4.0, 34.0, 28  # Simard et al. 2003, MNIST 28x28


def _float_images(x: Tensor, name: str) -> Tensor:
    if not x.is_floating_point():
        raise ValueError(f"{name} expects float images in [0, 1] (after ToFloat), got {x.dtype}")
    return flat_images(x)


def _per_image(values: Tensor, x: Tensor) -> Tensor:
    """Per-image values [B] (CPU) as [B, 1, 1, 1] on ``x``'s device."""
    return values.to(x.device).view(-1, 1, 1, 1)


def stroke_width(x: Tensor, change: Tensor) -> Tensor:
    """Float images [B, C, H, W] with dark strokes widened by ``change[b]`` pixels (negative:
    narrowed); ``change`` int64 [B] with values in -r..r. Widening by r is the min over the
    (2r+1)-square around each pixel, narrowing the max (pooling ignores the outside)."""
    out = x
    for radius in range(1, int(change.abs().max()) + 1 if len(change) else 1):
        size = 2 * radius + 1
        darker = -F.max_pool2d(-x, size, stride=1, padding=radius)
        lighter = F.max_pool2d(x, size, stride=1, padding=radius)
        pick = _per_image(change, x)
        out = torch.where(pick == radius, darker, torch.where(pick == -radius, lighter, out))
    return out


def random_stroke_width(x: Tensor, generator: torch.Generator, radius: int = 1, p: float = 0.5) -> Tensor:
    """Each image kept with probability 1 - ``p``, else its strokes widened or narrowed (even
    odds) by a radius drawn from 1..``radius`` pixels (``stroke_width``)."""
    flat = _float_images(x, "random_stroke_width")
    n = flat.shape[0]
    changed = torch.rand(n, generator=generator) < p
    size = torch.randint(1, radius + 1, (n,), generator=generator)
    sign = torch.where(torch.rand(n, generator=generator) < 0.5, -1, 1)
    return stroke_width(flat, torch.where(changed, size * sign, 0)).reshape(x.shape)


def gaussian_kernel(sigma: float) -> Tensor:
    """Normalised 1-D Gaussian of std ``sigma`` (pixels) over -ceil(3 sigma)..ceil(3 sigma), float64."""
    radius = max(1, math.ceil(3 * sigma))
    taps = torch.arange(-radius, radius + 1, dtype=torch.float64)
    kernel = torch.exp(-0.5 * (taps / sigma) ** 2)
    return kernel / kernel.sum()


def smooth(field: Tensor, sigma: float) -> Tensor:
    """[B, K, H, W] fields convolved with a separable Gaussian (``gaussian_kernel``), zero outside
    the image (scipy.ndimage.gaussian_filter's mode 'constant')."""
    kernel = gaussian_kernel(sigma).to(field.device, field.dtype)
    r, k = len(kernel) // 2, field.shape[1]
    rows = F.conv2d(F.pad(field, (r, r, 0, 0)), kernel.view(1, 1, 1, -1).expand(k, 1, 1, -1), groups=k)
    return F.conv2d(F.pad(rows, (0, 0, r, r)), kernel.view(1, 1, -1, 1).expand(k, 1, -1, 1), groups=k)


def displace(x: Tensor, shift: Tensor) -> Tensor:
    """Float images [B, C, H, W] resampled bilinearly at (column + shift[:, 0], row + shift[:, 1])
    (shift [B, 2, H, W] in pixels); outside the image the border pixel is repeated (white stays white)."""
    b, _, h, w = x.shape
    rows = torch.arange(h, device=x.device, dtype=x.dtype).view(1, h, 1) + shift[:, 1]
    cols = torch.arange(w, device=x.device, dtype=x.dtype).view(1, 1, w) + shift[:, 0]
    grid = torch.stack([(2 * cols + 1) / w - 1, (2 * rows + 1) / h - 1], dim=-1)  # pixel centres, align_corners=False
    return F.grid_sample(x, grid, mode="bilinear", padding_mode="border", align_corners=False)


def random_elastic(x: Tensor, generator: torch.Generator, sigma: float = SIMARD_SIGMA / SIMARD_SIDE,
                   alpha: float = SIMARD_ALPHA / SIMARD_SIDE, p: float = 0.5) -> Tensor:
    """Simard et al.'s elastic distortion (module docstring) of each image with probability ``p``;
    ``sigma`` and ``alpha`` are fractions of the image side (defaults: theirs on 28-pixel digits)."""
    flat = _float_images(x, "random_elastic")
    b, _, h, w = flat.shape
    side = max(h, w)
    noise = torch.rand(b, 2, h, w, generator=generator) * 2 - 1
    kept = torch.rand(b, generator=generator) < p
    field = smooth(noise.to(flat.device, flat.dtype), sigma * side) * (alpha * side)
    field = field * kept.to(flat.device, flat.dtype).view(-1, 1, 1, 1)
    return displace(flat, field).reshape(x.shape)


def erasing_boxes(n: int, h: int, w: int, generator: torch.Generator, area: tuple[float, float],
                  ratio: float) -> Tensor:
    """Zhong et al.'s rectangles for ``n`` images of h x w: int64 [n, 4] (top, left, height, width),
    area fraction uniform in ``area`` and log aspect ratio uniform in [log ratio, -log ratio],
    sides clipped to the image and the corner uniform over the positions that fit."""
    fraction = torch.rand(n, generator=generator, dtype=torch.float64) * (area[1] - area[0]) + area[0]
    aspect = torch.exp((torch.rand(n, generator=generator, dtype=torch.float64) * 2 - 1) * math.log(1 / ratio))
    height = (fraction * h * w * aspect).sqrt().round().clamp(1, h).long()
    width = (fraction * h * w / aspect).sqrt().round().clamp(1, w).long()
    top = (torch.rand(n, generator=generator, dtype=torch.float64) * (h - height + 1)).long()
    left = (torch.rand(n, generator=generator, dtype=torch.float64) * (w - width + 1)).long()
    return torch.stack([top, left, height, width], dim=1)


def random_erasing(x: Tensor, generator: torch.Generator, p: float = 0.5, area: tuple[float, float] = (0.02, 0.4),
                   ratio: float = 0.3, value: float = 1.0) -> Tensor:
    """With probability ``p`` per image, one ``erasing_boxes`` rectangle set to ``value`` (default
    1.0: the white background; Zhong et al.'s defaults for p, area and ratio)."""
    flat = _float_images(x, "random_erasing")
    b, _, h, w = flat.shape
    boxes = erasing_boxes(b, h, w, generator, area, ratio)
    erased = (torch.rand(b, generator=generator) < p).view(-1, 1, 1)
    rows, cols = torch.arange(h).view(1, h, 1), torch.arange(w).view(1, 1, w)
    top, left, height, width = (boxes[:, i].view(-1, 1, 1) for i in range(4))
    inside = erased & (rows >= top) & (rows < top + height) & (cols >= left) & (cols < left + width)
    return flat.masked_fill(inside.to(flat.device)[:, None], value).reshape(x.shape)


def _check_probability(name: str, p: float) -> None:
    if not 0 <= p <= 1:
        raise ValueError(f"{name} option p must lie in [0, 1], got {p!r}")


class RandomStrokeWidth:
    """``random_stroke_width`` as a pipeline step (after ``ToFloat``)."""

    def __init__(self, radius: int = 1, p: float = 0.5):
        if isinstance(radius, bool) or not isinstance(radius, int) or radius < 1:
            raise ValueError(f"RandomStrokeWidth option radius must be an int >= 1 (pixels), got {radius!r}")
        _check_probability("RandomStrokeWidth", p)
        self.radius, self.p = radius, p

    def __call__(self, x: Tensor, generator: torch.Generator | None = None) -> Tensor:
        return random_stroke_width(x, need_generator(generator, "RandomStrokeWidth"), self.radius, self.p)


class RandomElastic:
    """``random_elastic`` as a pipeline step (after ``ToFloat``)."""

    def __init__(self, sigma: float = SIMARD_SIGMA / SIMARD_SIDE, alpha: float = SIMARD_ALPHA / SIMARD_SIDE,
                 p: float = 0.5):
        if not (sigma > 0 and alpha >= 0):
            raise ValueError(f"RandomElastic needs sigma > 0 and alpha >= 0 (fractions of the side), got {sigma!r}, "
                             f"{alpha!r}")
        _check_probability("RandomElastic", p)
        self.sigma, self.alpha, self.p = sigma, alpha, p

    def __call__(self, x: Tensor, generator: torch.Generator | None = None) -> Tensor:
        return random_elastic(x, need_generator(generator, "RandomElastic"), self.sigma, self.alpha, self.p)


class RandomErasing:
    """``random_erasing`` as a pipeline step (after ``ToFloat``)."""

    def __init__(self, p: float = 0.5, area: tuple[float, float] = (0.02, 0.4), ratio: float = 0.3,
                 value: float = 1.0):
        _check_probability("RandomErasing", p)
        if not (0 < area[0] <= area[1] <= 1 and 0 < ratio <= 1):
            raise ValueError(f"RandomErasing needs 0 < area[0] <= area[1] <= 1 and 0 < ratio <= 1, got {area!r}, "
                             f"{ratio!r}")
        self.p, self.area, self.ratio, self.value = p, tuple(area), ratio, value

    def __call__(self, x: Tensor, generator: torch.Generator | None = None) -> Tensor:
        return random_erasing(x, need_generator(generator, "RandomErasing"), self.p, self.area, self.ratio,
                              self.value)
