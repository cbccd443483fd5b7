"""The peers' own models for ``maml.py``: what a learn2learn or higher user meta-trains, with
torch's ``nn.BatchNorm2d`` in training mode (batch statistics), so that "ahead of the peer" means
what such a user would see, not the peers running metahyper's model.

* learn2learn 0.2.0: ``l2l.vision.models.CNN4`` (= ``MiniImagenetCNN``: 4 x [conv3x3 with bias,
  BatchNorm2d, ReLU, maxpool 2], flattened 5x5x64 features at 84x84) and
  ``l2l.vision.models.ResNet12`` (MetaOptNet's, 64-160-320-640) with ``dropblock_dropout=0``
  (metahyper's ResNet-12 has no DropBlock). At reduced widths its backbone's stages are rebuilt
  with its own ``_make_layer`` and ``BasicBlock``. Its ResNet-12 average-pools a 5x5 map, so it
  runs at 84x84 only.
* higher 0.2.1 ships no models. Conv4: the network of its ``examples/maml-omniglot.py``
  (``nn.Sequential`` of Conv2d with bias, ``BatchNorm2d(momentum=1, affine=True)``, ReLU,
  MaxPool2d, then Flatten and Linear) with four blocks and 'same' padding, as Finn et al.'s
  MiniImageNet Conv4. ResNet-12: MetaOptNet's, which is metahyper's ``ResNet12`` layout
  (``metahyper/models/backbones.py``), with every batch norm an ``nn.BatchNorm2d``.

``own_models(name, size, way, widths)`` gives ``{peer: model}`` for the backbones that have
such twins (``conv4``, ``resnet12``) and the peers that import; ``{}`` otherwise.
"""

from __future__ import annotations

import warnings

from torch import nn

from metahyper.models.backbones import ResNet12
from metahyper.models.norm import MetaBatchNorm2d

FULL_WIDTHS = (64, 160, 320, 640)


def importable(module: str) -> bool:
    """Whether the peer library ``module`` imports here (its import warnings silenced)."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            __import__(module)
    except ImportError:
        return False
    return True


def learn2learn_model(name: str, size: int, way: int, widths: tuple[int, ...]) -> nn.Module | None:
    """learn2learn's own Conv4 or ResNet-12 (module docstring); None where it has none."""
    import learn2learn

    models = learn2learn.vision.models
    if name == "conv4":
        return models.CNN4(way, hidden_size=64, layers=4, channels=3, embedding_size=64 * (size // 16) ** 2)
    if name != "resnet12" or size != 84:
        return None
    model = models.ResNet12(way, hidden_size=widths[-1], dropblock_dropout=0.0)
    if tuple(widths) != FULL_WIDTHS:
        backbone = model.features
        backbone.inplanes = 3
        for i, width in enumerate(widths, start=1):
            setattr(backbone, f"layer{i}", backbone._make_layer(models.resnet12.BasicBlock, width, stride=2))
    return model


def higher_model(name: str, size: int, way: int, widths: tuple[int, ...]) -> nn.Module | None:
    """higher's example-style Conv4, or MetaOptNet's ResNet-12 with ``nn.BatchNorm2d``."""
    if name == "conv4":
        blocks = [nn.Sequential(nn.Conv2d(c, 64, 3, padding=1), nn.BatchNorm2d(64, momentum=1, affine=True),
                                nn.ReLU(inplace=True), nn.MaxPool2d(2)) for c in (3, 64, 64, 64)]
        return nn.Sequential(*blocks, nn.Flatten(), nn.Linear(64 * (size // 16) ** 2, way))
    if name != "resnet12":
        return None
    model = ResNet12(way, widths=tuple(widths))
    for path, module in list(model.named_modules()):
        if isinstance(module, MetaBatchNorm2d):
            model.set_submodule(path, nn.BatchNorm2d(module.num_features))
    return model


def own_models(name: str, size: int, way: int, widths: tuple[int, ...]) -> dict[str, nn.Module]:
    """``{"learn2learn, own model": ..., "higher, own model": ...}`` for the peers that import."""
    built = {peer: build(name, size, way, widths) for peer, build in
             (("learn2learn", learn2learn_model), ("higher", higher_model)) if importable(peer)}
    return {f"{peer}, own model": model for peer, model in built.items() if model is not None}
