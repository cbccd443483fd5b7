"""Plain backbones: Conv4, ResNet-12, ResNet-18/34 (CIFAR stem) and WideResNet-d-k.

Every backbone is a ``Backbone``: ``stem -> stages -> head -> global average pool ->
classifier``, so each accepts 32x32 and 84x84 inputs (any size that survives the poolings).
The layout is the contract that ``hyperize`` and friends rely on instead of copying
architectures:

* every conv is built by ``conv()`` (an ``nn.Conv2d`` without bias, He-initialised);
* ``stem`` holds the layers before the first stage (the stem stays plain in every variant);
* ``stages[s][b]`` is block ``b`` of stage ``s``, so a conv's module path
  ``stages.<s>.<b>.<...>`` gives its stage and block (see ``conv_site``);
* all batch norms are ``MetaBatchNorm2d`` (never ``nn.BatchNorm2d``), so MAML can run them on
  batch statistics and in inductive mode.
"""

from __future__ import annotations

from functools import partial

import torch
from torch import Tensor, nn

from metahyper.models.catalog import MODELS
from metahyper.models.norm import MetaBatchNorm2d
from metahyper.models.roles import MetaModel, ParamRole


def conv(c_in: int, c_out: int, kernel_size: int = 3, stride: int = 1) -> nn.Conv2d:
    """The conv factory of every backbone: "same" padding, no bias, He-normal weights."""
    layer = nn.Conv2d(c_in, c_out, kernel_size, stride=stride, padding=kernel_size // 2, bias=False)
    nn.init.kaiming_normal_(layer.weight, mode="fan_in", nonlinearity="relu")
    return layer


def conv_site(name: str) -> tuple[int, int] | None:
    """(stage, block) of the module called ``name`` (``stages.<s>.<b>...``); None for the stem."""
    parts = name.split(".")
    if len(parts) < 3 or parts[0] != "stages":
        return None
    return int(parts[1]), int(parts[2])


class Backbone(MetaModel):
    """``features(x) = mean_hw(head(stages(stem(x))))``; logits from ``self.classifier``.

    Parameter roles are declared by the modules that own them: a submodule with a
    ``param_roles`` dict (leaf parameter name -> ``ParamRole``) gives its parameters those
    roles, which is how the hyper convs and hypernetworks mark EMBEDDING and HYPERNET weights.
    Everything else is BODY, and ``classifier.*`` is CLASSIFIER.
    """

    def __init__(self, in_channels: int, stem: nn.Module, stages: list[nn.Sequential], head: nn.Module,
                 feature_dim: int, num_classes: int):
        super().__init__()
        self.in_channels = in_channels
        self.stem = stem
        self.stages = nn.ModuleList(stages)
        self.head = head
        self.classifier = nn.Linear(feature_dim, num_classes)

    autocast_dtype: torch.dtype | None = None  # reduced-precision features (metahyper.models.compute)

    def features(self, x: Tensor) -> Tensor:
        """[B, C, H, W] -> [B, feature_dim], float32 also when ``autocast_dtype`` computes them."""
        with torch.autocast(x.device.type, dtype=self.autocast_dtype, enabled=self.autocast_dtype is not None):
            x = self.stem(x)
            for stage in self.stages:
                x = stage(x)
            features = self.head(x).mean(dim=(2, 3))
        return features if self.autocast_dtype is None else features.float()

    def param_role(self, name: str) -> ParamRole:
        owner, _, leaf = name.rpartition(".")
        roles = getattr(self.get_submodule(owner), "param_roles", None) if owner else None
        if roles and leaf in roles:
            return roles[leaf]
        return super().param_role(name)


def conv_bn_relu(c_in: int, c_out: int) -> nn.Sequential:
    """conv3x3 -> BN -> ReLU -> maxpool 2: one Conv4 block."""
    return nn.Sequential(conv(c_in, c_out), MetaBatchNorm2d(c_out), nn.ReLU(inplace=True), nn.MaxPool2d(2))


class ResNet12Block(nn.Module):
    """MetaOptNet/MTL block: 3 x (conv3x3, BN, leaky ReLU 0.1) with a 1x1 conv+BN shortcut, maxpool 2.

    [B, c_in, H, W] -> [B, width, H/2, W/2]; the last leaky ReLU comes after the residual sum.
    """

    def __init__(self, c_in: int, width: int):
        super().__init__()
        self.conv1, self.bn1 = conv(c_in, width), MetaBatchNorm2d(width)
        self.conv2, self.bn2 = conv(width, width), MetaBatchNorm2d(width)
        self.conv3, self.bn3 = conv(width, width), MetaBatchNorm2d(width)
        self.shortcut = nn.Sequential(conv(c_in, width, 1), MetaBatchNorm2d(width))
        self.act = nn.LeakyReLU(0.1)
        self.pool = nn.MaxPool2d(2)

    def forward(self, x: Tensor) -> Tensor:
        out = self.act(self.bn1(self.conv1(x)))
        out = self.act(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        return self.pool(self.act(out + self.shortcut(x)))


class BasicBlock(nn.Module):
    """He et al. basic block (post-activation): conv-BN-ReLU-conv-BN + shortcut, ReLU.

    The shortcut is a 1x1 conv + BN when the stride or the width changes, else identity.
    """

    def __init__(self, c_in: int, c_out: int, stride: int = 1):
        super().__init__()
        self.conv1, self.bn1 = conv(c_in, c_out, stride=stride), MetaBatchNorm2d(c_out)
        self.conv2, self.bn2 = conv(c_out, c_out), MetaBatchNorm2d(c_out)
        needs_projection = stride != 1 or c_in != c_out
        self.shortcut = (
            nn.Sequential(conv(c_in, c_out, 1, stride), MetaBatchNorm2d(c_out)) if needs_projection else nn.Identity()
        )

    def forward(self, x: Tensor) -> Tensor:
        out = self.bn1(self.conv1(x)).relu()
        out = self.bn2(self.conv2(out))
        return (out + self.shortcut(x)).relu()


class WideBlock(nn.Module):
    """Zagoruyko & Komodakis pre-activation block: BN-ReLU-conv3x3-BN-ReLU-conv3x3 + shortcut.

    When the width changes the shortcut is a 1x1 conv (no BN) applied to the pre-activated input.
    """

    def __init__(self, c_in: int, c_out: int, stride: int = 1):
        super().__init__()
        self.bn1, self.conv1 = MetaBatchNorm2d(c_in), conv(c_in, c_out, stride=stride)
        self.bn2, self.conv2 = MetaBatchNorm2d(c_out), conv(c_out, c_out)
        self.shortcut = conv(c_in, c_out, 1, stride) if c_in != c_out or stride != 1 else None

    def forward(self, x: Tensor) -> Tensor:
        pre = self.bn1(x).relu()
        out = self.conv2(self.bn2(self.conv1(pre)).relu())
        return out + (x if self.shortcut is None else self.shortcut(pre))


class Conv4(Backbone):
    """4 x [conv3x3 ``width`` (64), BN, ReLU, maxpool 2]; the first block is the stem, the other 3 one stage."""

    def __init__(self, num_classes: int, in_channels: int = 3, width: int = 64):
        check_widths("conv4 option width", (width,))
        stage = nn.Sequential(*(conv_bn_relu(width, width) for _ in range(3)))
        super().__init__(in_channels, conv_bn_relu(in_channels, width), [stage], nn.Identity(), width, num_classes)


class ResNet12(Backbone):
    """ResNet-12 (MetaOptNet/MTL): 4 one-block stages of widths 64-160-320-640, no stem."""

    def __init__(self, num_classes: int, in_channels: int = 3, widths: tuple[int, ...] = (64, 160, 320, 640)):
        check_widths("resnet12 option widths", widths)
        c_ins = (in_channels, *widths[:-1])
        stages = [nn.Sequential(ResNet12Block(c, w)) for c, w in zip(c_ins, widths)]
        super().__init__(in_channels, nn.Identity(), stages, nn.Identity(), widths[-1], num_classes)


class CifarResNet(Backbone):
    """ResNet-18/34 with the CIFAR stem (DeVries & Taylor): conv3x3 64 stride 1, no maxpool.

    BasicBlock stages of widths 64-128-256-512, strides 1-2-2-2.
    """

    def __init__(self, num_classes: int, blocks: tuple[int, ...], in_channels: int = 3):
        stem = nn.Sequential(conv(in_channels, 64), MetaBatchNorm2d(64), nn.ReLU(inplace=True))
        stages, c_in = [], 64
        for s, (n, width) in enumerate(zip(blocks, (64, 128, 256, 512))):
            stride = 1 if s == 0 else 2
            stages.append(nn.Sequential(*(BasicBlock(c_in if b == 0 else width, width, stride if b == 0 else 1)
                                          for b in range(n))))
            c_in = width
        super().__init__(in_channels, stem, stages, nn.Identity(), 512, num_classes)


class WideResNet(Backbone):
    """WRN-depth-width: conv3x3 16 stem, 3 stages of (depth-4)/6 pre-activation blocks of widths
    16k, 32k, 64k (strides 1, 2, 2), final BN-ReLU."""

    def __init__(self, num_classes: int, depth: int, width: int, in_channels: int = 3):
        if depth < 10 or (depth - 4) % 6:
            raise ValueError(f"WideResNet option depth must be 6n+4 with n >= 1 (10, 16, 22, 28, 40...), got {depth}")
        if width < 1:
            raise ValueError(f"WideResNet option width must be >= 1, got {width}")
        n, widths = (depth - 4) // 6, (16 * width, 32 * width, 64 * width)
        stages, c_in = [], 16
        for s, w in enumerate(widths):
            stride = 1 if s == 0 else 2
            stages.append(nn.Sequential(*(WideBlock(c_in if b == 0 else w, w, stride if b == 0 else 1)
                                          for b in range(n))))
            c_in = w
        head = nn.Sequential(MetaBatchNorm2d(c_in), nn.ReLU(inplace=True))
        super().__init__(in_channels, conv(in_channels, 16), stages, head, c_in, num_classes)


def check_widths(option: str, widths: object) -> None:
    """Refuse channel widths that are not positive integers, naming the model option."""
    values = widths if isinstance(widths, (list, tuple)) else None
    if not values or any(isinstance(w, bool) or not isinstance(w, int) or w < 1 for w in values):
        raise ValueError(f"{option} must be positive integers, got {widths!r}")


@MODELS.register("conv4")
def conv4(num_classes: int, in_channels: int = 3, width: int = 64) -> Conv4:
    """Conv4 with ``width`` channels in every block (64 in the published Omniglot and
    miniImageNet numbers; 128 is the wider variant of issue 26)."""
    return Conv4(num_classes, in_channels, width)


@MODELS.register("resnet12")
def resnet12(num_classes: int, in_channels: int = 3, widths: tuple[int, ...] = (64, 160, 320, 640)) -> ResNet12:
    """ResNet-12 with one block per stage of ``widths`` (four stages, each halving the image
    side: 28-pixel inputs end at 1x1, 84-pixel ones at 5x5)."""
    if not isinstance(widths, (list, tuple)) or len(widths) != 4:
        raise ValueError(f"resnet12 option widths must list 4 stage widths, got {widths!r}")
    return ResNet12(num_classes, in_channels, tuple(widths))


@MODELS.register("resnet18")
def resnet18(num_classes: int, in_channels: int = 3) -> CifarResNet:
    return CifarResNet(num_classes, (2, 2, 2, 2), in_channels)


@MODELS.register("resnet34")
def resnet34(num_classes: int, in_channels: int = 3) -> CifarResNet:
    return CifarResNet(num_classes, (3, 4, 6, 3), in_channels)


@MODELS.register("wrn")
def wrn(num_classes: int, depth: int, width: int, in_channels: int = 3) -> WideResNet:
    return WideResNet(num_classes, depth, width, in_channels)


WRN_SHORTHANDS = ((16, 4), (28, 4), (28, 10), (40, 1), (40, 2))
for _depth, _width in WRN_SHORTHANDS:
    MODELS.register(f"wrn{_depth}_{_width}")(partial(wrn, depth=_depth, width=_width))
BUILTIN_BACKBONES = ("conv4", "resnet12", "resnet18", "resnet34", "wrn", *(f"wrn{d}_{w}" for d, w in WRN_SHORTHANDS))
"""The backbones this module registers (users register theirs elsewhere: ``metahyper.plugins``)."""
