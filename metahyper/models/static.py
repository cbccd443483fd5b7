"""Ha et al.'s static hypernetwork models: any backbone with one shared hypernetwork, and
their MNIST two-layer convnet.

``static_hyperize(backbone)`` generates every conv inside the stages whose channel counts are
multiples of the 16x16 basic block (the stem and the classifier stay plain, BN stays plain)
from ONE ``StaticLinearHyperNet`` (``hypernets.static``), one embedding z per 16x16 block.

Ha et al. do not say how the projection shortcuts of their WRN are built. Their Table 2
counts (Hyper WRN-40-1 0.097M, WRN-40-2 0.148M) come out only when the projections are
generated too (``shortcuts="hyper"``, the default: one z per 16x16 block, the centre tap of
the generated 3x3 block): 0.096M / 0.148M here. With plain 1x1 projections
(``shortcuts="plain"``) they are 0.098M / 0.156M.
"""

from __future__ import annotations

import copy

from torch import Tensor, nn

from metahyper.models.backbones import Backbone, conv, conv_site
from metahyper.models.catalog import MODELS
from metahyper.models.hyperconv import StaticHyperConv2d, StaticLinearHyperNet

SHORTCUT_MODES = ("hyper", "plain")


def static_hyperize(backbone: Backbone, z_dim: int = 64, shortcuts: str = "hyper", block: int = 16) -> Backbone:
    """A copy of ``backbone`` whose stage convs (3x3, and 1x1 projections unless
    ``shortcuts="plain"``) with channels divisible by ``block`` come from one shared
    ``StaticLinearHyperNet(z_dim, d=z_dim, block x block, k=3)``."""
    if shortcuts not in SHORTCUT_MODES:
        raise ValueError(f"static hypernetwork option shortcuts must be one of {SHORTCUT_MODES}, got {shortcuts!r}")
    if not isinstance(z_dim, int) or z_dim < 1:
        raise ValueError(f"static hypernetwork option z_dim must be a positive integer, got {z_dim!r}")
    model = copy.deepcopy(backbone)
    sizes = (3, 1) if shortcuts == "hyper" else (3,)
    sites = [(name, m) for name, m in model.named_modules()
             if isinstance(m, nn.Conv2d) and conv_site(name) is not None and m.kernel_size[0] in sizes
             and m.in_channels % block == 0 and m.out_channels % block == 0]
    if not sites:
        raise ValueError(f"static hypernetwork: {type(backbone).__name__} has no stage conv with "
                         f"channels divisible by block={block}")
    model.hypernets = nn.ModuleDict({"static": StaticLinearHyperNet(z_dim, z_dim, block, block, 3)})
    for name, layer in sites:
        model.set_submodule(name, StaticHyperConv2d(layer, model.hypernets["static"], "static"))
    return model


class HaMnistNet(Backbone):
    """Ha et al.'s MNIST model: conv 7x7 1->16 (plain stem), ReLU, maxpool 2, conv 7x7 16->16
    whose kernel comes from an N_z = 4 embedding through a static hypernetwork (4,240
    parameters), ReLU, maxpool 2, linear 7*7*16 -> classes. 28x28 single-channel inputs only
    (the classifier reads the flattened map, not a pooled one), hence not registered."""

    def __init__(self, num_classes: int = 10, z_dim: int = 4):
        stem = nn.Sequential(nn.Conv2d(1, 16, 7, padding=3), nn.ReLU(), nn.MaxPool2d(2))
        hypernet = StaticLinearHyperNet(z_dim, z_dim, 16, 16, 7)
        stage = nn.Sequential(StaticHyperConv2d(conv(16, 16, 7), hypernet, "static"), nn.ReLU(), nn.MaxPool2d(2))
        super().__init__(1, stem, [stage], nn.Identity(), 7 * 7 * 16, num_classes)
        self.hypernets = nn.ModuleDict({"static": hypernet})

    def features(self, x: Tensor) -> Tensor:
        """[B, 1, 28, 28] -> [B, 784]."""
        return self.stages[0](self.stem(x)).flatten(1)


# ``ha_<name>`` for every registered backbone (options z_dim, shortcuts, block + the backbone's)
MODELS.add_family("ha_", static_hyperize)
