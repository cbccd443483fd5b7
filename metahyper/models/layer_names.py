"""Layer names in the paper's words, and the layers the paper's Figure 4 draws.

Logs and checkpoints name a layer by its module path (``stages.0.1.conv1``, ``stages.0.2.0``),
which follows the layout contract of ``metahyper.models.backbones``: ``stem``, then
``stages[s][b]`` (block ``b`` of stage ``s``), ``head``, ``classifier``. Reports and figures
name it as a paper does, counting from 1 (``layer_label``):

* Conv4: its four convs in order, ``conv 1`` (the stem) to ``conv 4``, each with ``BN k``;
* ResNet-12 (one block per stage; the literature calls the stages its four residual blocks):
  ``block 2, conv 3``, ``block 2, BN 3``, ``block 2, shortcut conv``;
* WRN and the CIFAR ResNet-18/34: ``stage 1, block 2, conv 1``, ``... BN 2``, ``... shortcut
  conv``, ``stem conv``, ``final BN`` (WRN's last BN before pooling);
* every backbone: ``classifier``. Hyper models (``hyper_wrn28_4``) and the other families built
  on a backbone (``ha_``, ``bayes_``) keep the backbone's module paths, so they get its labels.

A backbone not listed (a user's) gets ``stage s, block b, conv k`` where its paths follow the
contract and its layers are called ``conv<k>``, ``bn<k>`` or ``shortcut``, else the path itself.

``paper_layers`` picks the three layers Figure 4 draws. Babu et al. plot HyperWRN-28-4's first
conv of block 2 of stage 1, second conv of block 2 of stage 2 and second conv of block 4 of
stage 3: an early, a middle and a late layer. For another backbone the same rule gives the
analogous ones.
"""

from __future__ import annotations

import re
from typing import Iterable, NamedTuple

from metahyper.models.backbones import BUILTIN_BACKBONES

_STAGED = re.compile(r"^stages\.(\d+)\.(\d+)\.(.+)$")
_CONV = re.compile(r"^conv(\d+)$")
_BN = re.compile(r"^bn(\d+)$")
SHORTCUT = {"shortcut": "shortcut conv", "shortcut.0": "shortcut conv", "shortcut.1": "shortcut BN"}
OUTSIDE = {"classifier": "classifier", "stem": "stem conv", "stem.0": "stem conv", "stem.1": "stem BN",
           "head.0": "final BN"}


def backbone_of(model: str | None) -> str | None:
    """The built-in backbone a registered model name is built on: ``hyper_wrn28_4`` -> ``wrn28_4``,
    ``ha_conv4`` -> ``conv4``; None for anything else."""
    if not model:
        return None
    for name in sorted(BUILTIN_BACKBONES, key=len, reverse=True):
        if model == name or model.endswith(f"_{name}"):
            return name
    return None


class Site(NamedTuple):
    """Where a layer sits: stage and block (from 0), and its leaf inside the block."""

    stage: int
    block: int
    leaf: str


def site(name: str) -> Site | None:
    """The ``Site`` of a module path inside ``stages`` (``stages.0.1.conv1``), else None."""
    found = _STAGED.match(name)
    return None if found is None else Site(int(found[1]), int(found[2]), found[3])


def _leaf_label(leaf: str) -> str:
    """``conv2`` -> ``conv 2``, ``bn1`` -> ``BN 1``, shortcuts by ``SHORTCUT``, else the leaf."""
    for pattern, word in ((_CONV, "conv"), (_BN, "BN")):
        found = pattern.match(leaf)
        if found:
            return f"{word} {found[1]}"
    return SHORTCUT.get(leaf, leaf)


def _conv4_label(name: str) -> str:
    """Conv4: the stem is block 1 and ``stages.0.<b>`` block b+2, each conv (0) then BN (1)."""
    index = {"stem.0": (1, "0"), "stem.1": (1, "1")}.get(name)
    found = site(name)
    if found is not None and found.leaf in ("0", "1"):
        index = (found.block + 2, found.leaf)
    if index is None:
        return OUTSIDE.get(name, name)
    return f"{'conv' if index[1] == '0' else 'BN'} {index[0]}"


def layer_label(name: str, model: str | None = None) -> str:
    """The paper's name of the layer at module path ``name`` (a ``.weight`` suffix is ignored)
    in registered model ``model`` (module docstring); the path itself when it has none."""
    name = name.removesuffix(".weight")
    backbone = backbone_of(model)
    if backbone == "conv4":
        return _conv4_label(name)
    found = site(name)
    if found is None:
        return OUTSIDE.get(name, name)
    inner = _leaf_label(found.leaf)
    if backbone is None and inner == found.leaf:  # a user's block with layers we cannot name
        return name
    if backbone == "resnet12":
        return f"block {found.stage + 1}, {inner}"
    return f"stage {found.stage + 1}, block {found.block + 1}, {inner}"


def _conv_index(leaf: str) -> int | None:
    """1 for Conv4's conv (leaf ``0``), k for ``conv<k>``, None for anything else."""
    if leaf == "0":
        return 1
    found = _CONV.match(leaf)
    return int(found[1]) if found else None


def paper_layers(layers: Iterable[str]) -> list[str]:
    """Figure 4's early, middle and late layer among ``layers`` (module paths of the convs a
    hyper run generates and its plain pair has; order kept as given otherwise).

    As Babu et al. pick them in HyperWRN-28-4: early, the first conv of block 2 of the first
    stage; middle, the second conv of block 2 of the middle stage; late, the last conv of the
    last block of the last stage. A stage with one block uses it; a conv missing from ``layers``
    (one the model does not generate, such as ResNet-12's first) gives way to the block's next
    (early), its last (middle). With three convs or fewer (Conv4: conv 2, 3, 4) all are drawn;
    layers outside the ``stages`` layout (a wrapped torchvision model) give the first, middle and
    last of ``layers``.
    """
    layers = list(layers)
    convs = {name: found for name in layers
             if (found := site(name)) is not None and _conv_index(found.leaf) is not None}
    if not convs:  # a model outside the layout contract: its first, middle and last layer
        return list(dict.fromkeys([layers[0], layers[len(layers) // 2], layers[-1]])) if layers else []
    if len(convs) <= 3:
        return list(convs)
    stages = sorted({s.stage for s in convs.values()})

    def block(stage: int, last: bool) -> list[tuple[int, str]]:
        blocks = sorted({s.block for s in convs.values() if s.stage == stage})
        chosen = blocks[-1] if last else blocks[min(1, len(blocks) - 1)]
        return sorted((_conv_index(s.leaf), name) for name, s in convs.items() if (s.stage, s.block) == (stage, chosen))

    early = block(stages[0], last=False)[0][1]
    middle_convs = block(stages[len(stages) // 2], last=False)
    middle = next((name for k, name in middle_convs if k == 2), middle_convs[-1][1])
    late = block(stages[-1], last=True)[-1][1]
    return list(dict.fromkeys([early, middle, late]))
