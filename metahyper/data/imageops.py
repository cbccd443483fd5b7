"""Image-tensor operations with no dependency inside ``metahyper``: flattening the leading dims
and resizing. A leaf module, so that both ``ImageStore.resized`` (``stores``) and the batched
transforms (``transforms``) use one resize without importing each other.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor


def flat_images(x: Tensor) -> Tensor:
    """[..., C, H, W] -> [B, C, H, W]; a ValueError names the shape when there are fewer than 3 dims."""
    if x.dim() < 3:
        raise ValueError(f"images must be [..., C, H, W], got shape {tuple(x.shape)}")
    return x.reshape(-1, *x.shape[-3:])


def resize(x: Tensor, size: int) -> Tensor:
    """Bilinear antialiased resize of [..., C, H, W] to [..., C, size, size]. uint8 input is
    resized in float and rounded back to uint8; float input stays float."""
    flat = flat_images(x)
    out = F.interpolate(flat.float(), size=(size, size), mode="bilinear", align_corners=False, antialias=True)
    if x.dtype == torch.uint8:
        out = out.round_().clamp_(0, 255).to(torch.uint8)
    return out.reshape(*x.shape[:-2], size, size)
