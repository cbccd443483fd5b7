"""How a model computes on the device: memory layout and reduced precision of the features (issue 26).

``ComputeConfig`` is a suite setting (``compute:``) for every stage of every run:

* ``channels_last``: the convolution weights (and so the activations) in NHWC layout, which
  oneDNN's CPU convolutions and max-pooling run faster in (measured 1.6x for a Conv4 ProtoNet
  step at 28 and 84 pixels: benchmarks/speed/omniglot_protonet.py). The numbers change only by
  the rounding of another summation order;
* ``autocast``: ``bfloat16`` (or ``float16``) runs ``Backbone.features`` under ``torch.autocast``
  on the batch's device and returns float32 features, so every head, distance, loss and
  optimiser step stays in float32: prototype distances ``||q||^2 - 2 q.c + ||c||^2`` cancel
  catastrophically in bfloat16 (84-pixel Conv4 at init: 18% of the argmaxes agree with float32
  when the distances are in bfloat16, 96% when only the features are). It changes the numbers
  (bfloat16 keeps 8 bits of mantissa), so validate a recipe under it before relying on it.

Both enter the config hash of every stage when set, and change nothing when left at their defaults.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

AUTOCAST_DTYPES = {"bfloat16": torch.bfloat16, "float16": torch.float16}


@dataclass(frozen=True)
class ComputeConfig:
    """Memory layout and feature precision (module docstring); errors name the field."""

    channels_last: bool = False
    autocast: str | None = None

    def __post_init__(self) -> None:
        if self.autocast is not None and self.autocast not in AUTOCAST_DTYPES:
            raise ValueError(f"autocast must be null or one of {list(AUTOCAST_DTYPES)}, got {self.autocast!r}")

    def hashed(self) -> dict[str, dict[str, object]]:
        """``{"compute": {the fields that are set}}`` for the stage hashes, ``{}`` at the defaults."""
        changed = {k: v for k, v in vars(self).items() if v != getattr(ComputeConfig, k)}
        return {"compute": changed} if changed else {}

    def apply(self, model: nn.Module) -> nn.Module:
        """``model`` (changed in place) with this layout and feature precision. Autocast needs a
        model whose ``features`` honours ``autocast_dtype`` (every ``Backbone``); a ValueError says so."""
        if self.autocast is not None:
            if not hasattr(type(model), "autocast_dtype"):
                raise ValueError(f"autocast: model {type(model).__name__} does not run its features under autocast "
                                 "(only Backbone models do); remove compute.autocast")
            model.autocast_dtype = AUTOCAST_DTYPES[self.autocast]
        return model.to(memory_format=torch.channels_last) if self.channels_last else model
