"""Batched image transforms that run on the device of the batch.

Every transform takes images [..., C, H, W] (any number of leading dims, e.g. [T, n, C, H, W]
from a TaskBatch) and returns the same leading dims. Random transforms draw their numbers
from the ``torch.Generator`` they are given (a CPU generator; the few numbers per image are
moved to the batch's device), never from the global RNG, so results are identical on every
device. Transforms compose with ``Compose``; ``TaskBatch.map_images`` applies one to the
support and query images of a task batch. ``Transform`` is the one type of such a callable.
"""

from __future__ import annotations

import math
from typing import Callable, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor

from metahyper.data.imageops import flat_images as _flat
from metahyper.data.imageops import resize

Transform = Callable[[Tensor, "torch.Generator | None"], Tensor]  # images [..., C, H, W] (uint8 or float) -> float


def _need_generator(generator: torch.Generator | None, name: str) -> torch.Generator:
    if generator is None:
        raise ValueError(f"{name} is random: pass a torch.Generator (the global RNG is never used)")
    return generator


def to_float(x: Tensor) -> Tensor:
    """uint8 [..., C, H, W] -> float32 in [0, 1]."""
    if x.dtype != torch.uint8:
        raise ValueError(f"to_float expects uint8 images, got {x.dtype}")
    return x.to(torch.float32).div_(255.0)


def normalize(x: Tensor, mean: Sequence[float], std: Sequence[float]) -> Tensor:
    """(x - mean[c]) / std[c] per channel c of float [..., C, H, W]."""
    shape = (len(mean), 1, 1)
    m = torch.as_tensor(mean, dtype=x.dtype, device=x.device).view(shape)
    s = torch.as_tensor(std, dtype=x.dtype, device=x.device).view(shape)
    return (x - m) / s


def random_pad_crop(x: Tensor, pad: int, generator: torch.Generator) -> Tensor:
    """Zero-pads each image by ``pad`` on every side and crops H x W back at an offset drawn
    per image uniformly from 0..2*pad in each axis (vectorised gather)."""
    flat = _flat(x)
    b, c, h, w = flat.shape
    offsets = torch.randint(0, 2 * pad + 1, (b, 2), generator=generator).to(x.device)
    padded = F.pad(flat, (pad, pad, pad, pad))
    rows = (offsets[:, 0:1] + torch.arange(h, device=x.device)).view(b, 1, h, 1)
    cols = (offsets[:, 1:2] + torch.arange(w, device=x.device)).view(b, 1, 1, w)
    batch = torch.arange(b, device=x.device).view(b, 1, 1, 1)
    chan = torch.arange(c, device=x.device).view(1, c, 1, 1)
    return padded[batch, chan, rows, cols].reshape(x.shape)


def random_hflip(x: Tensor, generator: torch.Generator, p: float = 0.5) -> Tensor:
    """Mirrors each image left-right with probability ``p`` (one draw per image)."""
    flat = _flat(x)
    flip = (torch.rand(flat.shape[0], generator=generator) < p).to(x.device).view(-1, 1, 1, 1)
    return torch.where(flip, flat.flip(-1), flat).reshape(x.shape)


def color_jitter(x: Tensor, generator: torch.Generator, brightness: float = 0.4, contrast: float = 0.4) -> Tensor:
    """Float images in [0, 1]: per image, scales brightness by a factor drawn from
    [1-brightness, 1+brightness], then contrast around the image's mean grey level by a
    factor from [1-contrast, 1+contrast]; clamps to [0, 1]."""
    flat = _flat(x)
    factors = torch.rand(flat.shape[0], 2, generator=generator).to(x.device, x.dtype) * 2 - 1
    bright = (1 + brightness * factors[:, 0]).view(-1, 1, 1, 1)
    contr = (1 + contrast * factors[:, 1]).view(-1, 1, 1, 1)
    out = flat * bright
    mean = out.mean(dim=(1, 2, 3), keepdim=True)
    return ((out - mean) * contr + mean).clamp_(0, 1).reshape(x.shape)



def affine_matrices(n: int, generator: torch.Generator, degrees: float, shear: float, scale: tuple[float, float],
                    translate: float, p: float) -> tuple[Tensor, Tensor]:
    """Koch et al.'s (2015) random affine distortions of ``n`` images: a rotation by theta in
    [-degrees, degrees], shears rho_x, rho_y in [-shear, shear], scales s_x, s_y in ``scale`` and
    a shift t_x, t_y in [-translate, translate] (a fraction of the image side), each component
    drawn uniformly and kept with probability ``p`` (else neutral). Returns the linear parts
    M = R(theta) @ [[1, rho_x], [rho_y, 1]] @ diag(s_x, s_y) [n, 2, 2] and the shifts [n, 2] in
    ``affine_grid``'s coordinates (the side spans 2), in the order x, y."""

    def component(low: float, high: float, neutral: float) -> Tensor:
        value = torch.rand(n, generator=generator, dtype=torch.float64) * (high - low) + low
        kept = torch.rand(n, generator=generator) < p
        return torch.where(kept, value, torch.full_like(value, neutral))

    theta = component(-degrees, degrees, 0.0) * (math.pi / 180)
    rho_x, rho_y = component(-shear, shear, 0.0), component(-shear, shear, 0.0)
    s_x, s_y = component(*scale, 1.0), component(*scale, 1.0)
    t_x, t_y = component(-translate, translate, 0.0), component(-translate, translate, 0.0)
    cos, sin, one = torch.cos(theta), torch.sin(theta), torch.ones(n, dtype=torch.float64)
    rotation = torch.stack([torch.stack([cos, -sin], -1), torch.stack([sin, cos], -1)], -2)
    shearing = torch.stack([torch.stack([one, rho_x], -1), torch.stack([rho_y, one], -1)], -2)
    return rotation @ shearing @ torch.diag_embed(torch.stack([s_x, s_y], -1)), 2 * torch.stack([t_x, t_y], -1)


def warp_affine(x: Tensor, linear: Tensor, shift: Tensor) -> Tensor:
    """Float images [N, C, H, W] moved by x -> linear @ x + shift about the image centre (in
    ``affine_grid`` coordinates): each output pixel samples the input bilinearly at
    linear^-1 @ (x - shift); outside the image the border pixel is repeated (Omniglot's white
    margin stays white, where zero padding would draw ink)."""
    inverse = torch.linalg.inv(linear)
    theta = torch.cat([inverse, -(inverse @ shift.unsqueeze(-1))], dim=-1).to(x.device, x.dtype)
    grid = F.affine_grid(theta, list(x.shape), align_corners=False)
    return F.grid_sample(x, grid, mode="bilinear", padding_mode="border", align_corners=False)


def random_affine(x: Tensor, generator: torch.Generator, degrees: float = 10.0, shear: float = 0.3,
                  scale: tuple[float, float] = (0.8, 1.2), translate: float = 2 / 105, p: float = 0.5) -> Tensor:
    """Float images [..., C, H, W]: each image distorted by its own ``affine_matrices`` draw
    (defaults: Koch et al.'s ranges, their 2-pixel shift on 105-pixel Omniglot images as a
    fraction of the side) and resampled by ``warp_affine``."""
    if not x.is_floating_point():
        raise ValueError(f"random_affine expects float images (after ToFloat), got {x.dtype}")
    flat = _flat(x)
    linear, shift = affine_matrices(flat.shape[0], generator, degrees, shear, scale, translate, p)
    return warp_affine(flat, linear, shift).reshape(x.shape)


class Compose:
    """Applies transforms in order. Each step is ``fn(x, generator)``; build steps with the
    helpers below (``ToFloat()``, ``Normalize(...)``, ``RandomPadCrop(4)``, ...)."""

    def __init__(self, steps: Sequence[Transform]):
        self.steps = list(steps)

    def __call__(self, x: Tensor, generator: torch.Generator | None = None) -> Tensor:
        for step in self.steps:
            x = step(x, generator)
        return x


class ToFloat:
    def __call__(self, x: Tensor, generator: torch.Generator | None = None) -> Tensor:
        return to_float(x)


class Normalize:
    def __init__(self, mean: Sequence[float], std: Sequence[float]):
        self.mean, self.std = tuple(mean), tuple(std)

    def __call__(self, x: Tensor, generator: torch.Generator | None = None) -> Tensor:
        return normalize(x, self.mean, self.std)


class Resize:
    def __init__(self, size: int):
        self.size = size

    def __call__(self, x: Tensor, generator: torch.Generator | None = None) -> Tensor:
        return resize(x, self.size)


class RandomPadCrop:
    def __init__(self, pad: int = 4):
        self.pad = pad

    def __call__(self, x: Tensor, generator: torch.Generator | None = None) -> Tensor:
        return random_pad_crop(x, self.pad, _need_generator(generator, "RandomPadCrop"))


class RandomHFlip:
    def __init__(self, p: float = 0.5):
        self.p = p

    def __call__(self, x: Tensor, generator: torch.Generator | None = None) -> Tensor:
        return random_hflip(x, _need_generator(generator, "RandomHFlip"), self.p)


class RandomAffine:
    """``random_affine`` as a step (after ``ToFloat``); defaults are Koch et al.'s distortions."""

    def __init__(self, degrees: float = 10.0, shear: float = 0.3, scale: tuple[float, float] = (0.8, 1.2),
                 translate: float = 2 / 105, p: float = 0.5):
        self.degrees, self.shear, self.scale, self.translate, self.p = degrees, shear, tuple(scale), translate, p

    def __call__(self, x: Tensor, generator: torch.Generator | None = None) -> Tensor:
        return random_affine(x, _need_generator(generator, "RandomAffine"), self.degrees, self.shear, self.scale,
                             self.translate, self.p)


class ColorJitter:
    def __init__(self, brightness: float = 0.4, contrast: float = 0.4):
        self.brightness, self.contrast = brightness, contrast

    def __call__(self, x: Tensor, generator: torch.Generator | None = None) -> Tensor:
        return color_jitter(x, _need_generator(generator, "ColorJitter"), self.brightness, self.contrast)


class Torchvision:
    """A torchvision ``transforms.v2`` pipeline (or any callable taking and returning one image
    tensor [C, H, W]) as a step here, for augmentations this module does not have::

        from torchvision.transforms import v2
        step = transforms.Torchvision(v2.Compose([v2.RandomResizedCrop(32, antialias=True),
                                                  v2.ToDtype(torch.float32, scale=True)]))

    Images are transformed one by one (a Python loop: slower than the batched steps) and must
    come out with one shape. Determinism caveat: torchvision draws its random numbers from
    torch's global CPU RNG, so for each call the adapter draws one seed from the step's
    generator (seed 0 without one) and seeds the global RNG with it inside
    ``torch.random.fork_rng`` (the caller's global RNG is left as it was). A fixed generator
    then gives fixed results on CPU; numbers drawn from Python's ``random`` or numpy, and
    nondeterministic kernels on GPUs, are not covered.
    """

    def __init__(self, pipeline: Callable[[Tensor], Tensor]):
        self.pipeline = pipeline

    def __call__(self, x: Tensor, generator: torch.Generator | None = None) -> Tensor:
        flat = _flat(x)
        seed = 0 if generator is None else int(torch.randint(0, 2**62, (1,), generator=generator))
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            out = torch.stack([self.pipeline(image) for image in flat])
        return out.reshape(*x.shape[:-3], *out.shape[1:])

