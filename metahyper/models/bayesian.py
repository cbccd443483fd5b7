"""Ukai et al.'s hypernetwork-based implicit posterior and model averaging, on any backbone.

``bayesianize(backbone)`` generates EVERY conv (stem and shortcuts included; BN and the
classifier stay plain) with its own bias-free ``BayesianHyperNet`` fed with noise z from a
prior. Strategies: ``"all-in-one"`` (one z shared by all layers) and ``"block-wise"`` (one z
per residual block; the stem gets its own). Each forward pass draws ONE fresh weight sample
(shared by the whole mini-batch); ``predict_averaged`` averages the softmax outputs of N
samples (model averaging at test time).

Determinism: noise comes from the ``torch.Generator`` passed to ``forward``/``features``/
``sample_noise``/``predict_averaged`` (the global RNG only when none is given), so the same
generator state gives the same samples and outputs.
"""

from __future__ import annotations

import copy

import torch
from torch import Tensor, nn

from metahyper.models.backbones import BUILTIN_BACKBONES, Backbone, conv_site
from metahyper.models.catalog import MODELS
from metahyper.models.hyperconv import BayesianHyperConv2d, NoiseBank

STRATEGIES = ("all-in-one", "block-wise")


class BayesianHyperModel(Backbone):
    """A backbone (same stem/stages/head/classifier modules and names) whose convs are
    ``BayesianHyperConv2d``; ``noise`` holds the sample of the forward pass in progress."""

    def __init__(self, backbone: Backbone, noise: NoiseBank):
        super().__init__(backbone.in_channels, backbone.stem, list(backbone.stages), backbone.head,
                         backbone.feature_dim, backbone.classifier.out_features)
        self.classifier = backbone.classifier
        self.noise = noise

    def sample_noise(self, generator: torch.Generator | None = None) -> Tensor:
        """One weight sample's noise [groups, z_dim] from the prior."""
        ref = self.classifier.weight
        return self.noise.sample(generator, ref.device, ref.dtype)

    def features(self, x: Tensor, noise: Tensor | None = None, generator: torch.Generator | None = None) -> Tensor:
        """[B, C, H, W] -> [B, F] with the weights of ``noise`` (a fresh sample when None)."""
        self.noise.current = self.sample_noise(generator) if noise is None else noise
        try:
            return super().features(x)
        finally:
            self.noise.current = None

    def forward(self, x: Tensor, noise: Tensor | None = None, generator: torch.Generator | None = None) -> Tensor:
        """[B, C, H, W] -> [B, classes] logits of one weight sample."""
        return self.classifier(self.features(x, noise, generator))

    def predict_averaged(self, x: Tensor, n_samples: int, generator: torch.Generator | None = None) -> Tensor:
        """Mean over ``n_samples`` weight samples of softmax(logits): [B, classes] probabilities."""
        if n_samples < 1:
            raise ValueError(f"predict_averaged option n_samples must be >= 1, got {n_samples}")
        total = sum(self(x, generator=generator).softmax(dim=-1) for _ in range(n_samples))
        return total / n_samples


def _noise_groups(backbone: Backbone, strategy: str) -> dict[str, int]:
    """conv path -> noise group: 0 for all (all-in-one), or one group per block (stem: its own)."""
    names = [name for name, m in backbone.named_modules() if isinstance(m, nn.Conv2d)]
    if strategy == "all-in-one":
        return dict.fromkeys(names, 0)
    blocks = {name: conv_site(name) for name in names}
    ids = {site: i for i, site in enumerate(dict.fromkeys(blocks.values()))}
    return {name: ids[site] for name, site in blocks.items()}


def bayesianize(backbone: Backbone, z_dim: int = 16, h_dim: int = 16, prior: str = "uniform11",
                strategy: str = "all-in-one", activation: str = "relu") -> BayesianHyperModel:
    """``backbone`` (not modified) turned into Ukai et al.'s Bayesian hypernetwork model."""
    if strategy not in STRATEGIES:
        raise ValueError(f"Bayesian model option strategy must be one of {STRATEGIES}, got {strategy!r}")
    body = copy.deepcopy(backbone)
    groups = _noise_groups(body, strategy)
    noise = NoiseBank(max(groups.values()) + 1, z_dim, prior)
    for name, group in groups.items():
        body.set_submodule(name, BayesianHyperConv2d(body.get_submodule(name), noise, group, h_dim, activation))
    return BayesianHyperModel(body, noise)


BAYESIAN_BACKBONES = ("conv4", "wrn16_4", "wrn40_2")


def bayesian_applies(base: str) -> bool:
    """``bayes_<base>`` exists for the small built-in backbones only (each conv's hypernetwork
    output layer has h_dim x numel(kernel) parameters) and for every backbone registered
    outside ``backbones.py`` (a user's, whose size is the user's choice)."""
    return base in BAYESIAN_BACKBONES or base not in BUILTIN_BACKBONES


MODELS.add_family("bayes_", bayesianize, bayesian_applies)
