"""Procedural image classes in two visually different families (the built-in default data).

'source': oriented sinusoidal gratings, optionally plaids; a class is an orientation, a
spatial frequency, a second-grating weight and a colour pair. 'target': a soft disk or ring
over a rotated checkerboard; a class is a checker frequency and angle, a blob radius and
shape, and colours. Every image jitters its class's parameters (phase, position, size,
orientation, colours, contrast) and adds pixel noise, so tasks are learnable (the class is
in the image's structure, not in any single pixel or colour) but not trivial.

Each class (its parameters, then its images) is drawn from its own ``torch.Generator``
seeded from (seed, family, split, class index), never the global RNG, so a class does not
depend on how many classes or images are asked for. Rendering is vectorised over images.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from metahyper.data.bounded import check_image_size, check_store_memory
from metahyper.data.rng import keyed_generator
from metahyper.data.sources import DATASETS
from metahyper.data.splits import canonical_split
from metahyper.data.stores import ImageStore

FAMILIES = ("source", "target")
DEFAULT_CLASSES = {"train": 64, "val": 16, "test": 20}
DEFAULT_PER_CLASS, DEFAULT_SIZE = 600, 32
NOISE = 0.08
CHUNK = 32


def _uniform(generator: torch.Generator, low: float, high: float, *shape: int) -> Tensor:
    """Uniform values in [low, high) of ``shape`` (a scalar when no shape is given)."""
    return low + (high - low) * torch.rand(shape, generator=generator)


def _grid(size: int) -> tuple[Tensor, Tensor]:
    """Pixel-centre coordinates in [-1, 1]: y, x each [1, size, size]."""
    axis = (torch.arange(size, dtype=torch.float32) + 0.5) / size * 2 - 1
    y, x = torch.meshgrid(axis, axis, indexing="ij")
    return y.unsqueeze(0), x.unsqueeze(0)


def _col(values: Tensor) -> Tensor:
    """[n] per-image values -> [n, 1, 1] to broadcast over [n, S, S]."""
    return values.view(-1, 1, 1)


def class_params(family: str, g: torch.Generator) -> dict[str, Tensor]:
    """One class's parameters: scalars, or [3] for colours."""
    common = {"fg": torch.rand(3, generator=g), "bg": torch.rand(3, generator=g)}
    if family == "source":
        return {**common, "angle": _uniform(g, 0, math.pi),
                "freq": torch.exp(_uniform(g, math.log(1.5), math.log(6.0))),
                "angle2": _uniform(g, 0, math.pi), "plaid": _uniform(g, 0.0, 0.5)}
    return {**common, "checks": _uniform(g, 1.5, 6.0), "tilt": _uniform(g, 0, math.pi / 2),
            "radius": _uniform(g, 0.25, 0.6), "ring": (torch.rand((), generator=g) < 0.5).float(),
            "blob": torch.rand(3, generator=g)}


def _jittered(colour: Tensor, n: int, g: torch.Generator, spread: float = 0.3) -> Tensor:
    """Per-image colours [n, 3] around a class colour [3]."""
    return (colour + spread * torch.randn(n, 3, generator=g)).clamp(0, 1)


def image_params(family: str, p: dict[str, Tensor], n: int, g: torch.Generator) -> dict[str, Tensor]:
    """Per-image parameters of n images of the class with parameters ``p``: [n] or [n, 3]."""
    q = {"fg": _jittered(p["fg"], n, g), "bg": _jittered(p["bg"], n, g)}
    if family == "source":
        return {**q, "angle": p["angle"] + 0.08 * torch.randn(n, generator=g),
                "freq": p["freq"] * (1 + 0.05 * torch.randn(n, generator=g)),
                "phase": _uniform(g, 0, 2 * math.pi, n, 2), "contrast": _uniform(g, 0.6, 1.0, n),
                "angle2": p["angle2"].expand(n), "plaid": p["plaid"].expand(n)}
    return {**q, "tilt": p["tilt"] + 0.05 * torch.randn(n, generator=g), "shift": _uniform(g, 0, 2 * math.pi, n, 2),
            "centre": _uniform(g, -0.3, 0.3, n, 2), "radius": p["radius"] * (1 + 0.1 * torch.randn(n, generator=g)),
            "blob": _jittered(p["blob"], n, g), "checks": p["checks"].expand(n), "ring": p["ring"].expand(n)}


def _grating(y: Tensor, x: Tensor, angle: Tensor, freq: Tensor, phase: Tensor) -> Tensor:
    """sin grating in [0, 1]: [n, S, S] from per-image angle, freq (cycles/image), phase [n]."""
    along = x * _col(torch.cos(angle)) + y * _col(torch.sin(angle))
    return 0.5 + 0.5 * torch.sin(math.pi * _col(freq) * along + _col(phase))


def _render_source(q: dict[str, Tensor], y: Tensor, x: Tensor) -> Tensor:
    """Gratings/plaids: float [n, 3, S, S] in [0, 1] (before noise)."""
    main = _grating(y, x, q["angle"], q["freq"], q["phase"][:, 0])
    second = _grating(y, x, q["angle"] + q["angle2"], q["freq"] * 1.5, q["phase"][:, 1])
    plaid = _col(q["plaid"])
    pattern = 0.5 + _col(q["contrast"]) * ((1 - plaid) * main + plaid * second - 0.5)
    return _blend(q["bg"], q["fg"], pattern)


def _render_target(q: dict[str, Tensor], y: Tensor, x: Tensor) -> Tensor:
    """Disk or ring over a tilted checkerboard: float [n, 3, S, S] in [0, 1] (before noise)."""
    cos, sin = _col(torch.cos(q["tilt"])), _col(torch.sin(q["tilt"]))
    freq = _col(math.pi * q["checks"])
    wave_u = torch.sin(freq * (x * cos + y * sin) + _col(q["shift"][:, 0]))
    wave_v = torch.sin(freq * (y * cos - x * sin) + _col(q["shift"][:, 1]))
    checker = 0.5 + 0.5 * torch.tanh(4 * wave_u * wave_v)
    dist = torch.sqrt((x - _col(q["centre"][:, 0])) ** 2 + (y - _col(q["centre"][:, 1])) ** 2)
    edge, radius = 2.0 / x.shape[-1], _col(q["radius"])
    blob = torch.sigmoid((radius - dist) / edge) - _col(q["ring"]) * torch.sigmoid((0.55 * radius - dist) / edge)
    background = _blend(q["bg"], q["fg"], 0.6 * checker)
    colour = q["blob"].view(-1, 3, 1, 1)
    return background + (colour - background) * blob.unsqueeze(1)


def _blend(low: Tensor, high: Tensor, weight: Tensor) -> Tensor:
    """low + (high - low) * weight: colours [n, 3], weight [n, S, S] -> [n, 3, S, S]."""
    low, high = low.view(-1, 3, 1, 1), high.view(-1, 3, 1, 1)
    return low + (high - low) * weight.unsqueeze(1)


def class_images(family: str, n: int, size: int, generator: torch.Generator) -> Tensor:
    """uint8 [n, 3, size, size]: a class drawn from ``generator`` and n of its images
    (rendered CHUNK images at a time so temporaries stay in cache; grey pixel noise)."""
    q = image_params(family, class_params(family, generator), n, generator)
    render = _render_source if family == "source" else _render_target
    y, x = _grid(size)
    out = torch.empty((n, 3, size, size), dtype=torch.uint8)
    for start in range(0, n, CHUNK):
        part = {k: v[start : start + CHUNK] for k, v in q.items()}
        image = render(part, y, x)
        image += NOISE * torch.randn((image.shape[0], 1, size, size), generator=generator)
        out[start : start + CHUNK] = image.clamp_(0, 1).mul_(255).round_()
    return out


def make_synthetic(family: str = "source", split: str = "train", num_classes: int | None = None,
                   images_per_class: int = 600, image_size: int = 32, seed: int = 0) -> ImageStore:
    """A synthetic store: ``num_classes`` (default 64/16/20 for train/val/test) classes of
    ``images_per_class`` RGB images [N, 3, image_size, image_size]; class names
    ``<family>-<split>-<k>``. Different splits (and families) have different classes."""
    if family not in FAMILIES:
        raise ValueError(f"family must be one of {FAMILIES}, got {family!r}")
    split = canonical_split(split)
    k = DEFAULT_CLASSES[split] if num_classes is None else num_classes
    check_synthetic_size(split, k, images_per_class, image_size)
    images = torch.empty((k * images_per_class, 3, image_size, image_size), dtype=torch.uint8)
    for c in range(k):
        block = slice(c * images_per_class, (c + 1) * images_per_class)
        generator = keyed_generator("metahyper-synthetic", seed, family, split, c)
        images[block] = class_images(family, images_per_class, image_size, generator)
    labels = torch.arange(k).repeat_interleave(images_per_class)
    names = [f"{family}-{split}-{c:03d}" for c in range(k)]
    return ImageStore(images, labels, names, f"synthetic {family} {split} seed={seed}")


def check_synthetic_size(split: str, num_classes: int | None = None, images_per_class: int | None = None,
                         image_size: int | None = None) -> None:
    """``ValueError`` naming the setting when a synthetic store of ``split`` (None: the defaults
    of ``load_synthetic``) would be empty or not fit in this machine's memory; checked before
    any image is made (a suite checks its data settings with it before any work)."""
    k = DEFAULT_CLASSES[canonical_split(split)] if num_classes is None else num_classes
    per_class, size = (DEFAULT_PER_CLASS if images_per_class is None else images_per_class), image_size or DEFAULT_SIZE
    for name, value in (("num_classes", k), ("images_per_class", per_class), ("image_size", size)):
        if value < 1:
            raise ValueError(f"{name} must be >= 1, got {value}")
    check_image_size(size, "image_size")
    check_store_memory(k * per_class, 3, size, f"synthetic data of num_classes={k} x images_per_class={per_class}")


@DATASETS.register("synthetic")
def load_synthetic(root=None, split: str = "train", image_size: int | None = None, cache_dir=None,
                   family: str = "source", num_classes: int | None = None, images_per_class: int = DEFAULT_PER_CLASS,
                   seed: int = 0) -> ImageStore:
    """``load_store('synthetic', None, split, ...)``: see ``make_synthetic`` (root and
    cache_dir are ignored; generation takes seconds). image_size defaults to 32."""
    return make_synthetic(family, split, num_classes, images_per_class, image_size or DEFAULT_SIZE, seed)
