"""Test-time measurements for classification: accuracy, BN statistics for SWA, and Ukai et al.'s
model averaging and quadruple-fault count.

Ukai et al.'s Bayesian models draw one weight sample per forward pass; every draw here comes
from a ``torch.Generator`` passed in (``logits(model, x, noise)``), never the global RNG.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence

import torch
from torch import Tensor, nn
from torch.nn.modules.batchnorm import _BatchNorm

from metahyper.data.stores import ImageStore
from metahyper.data.transforms import Transform
from metahyper.models.bayesian import BayesianHyperModel
from metahyper.models.norm import MetaBatchNorm2d
from metahyper.train.supervised import iterate_batches, logits

FAULT_NETWORKS = 4  # Ukai et al., Table 3: images misclassified by all of 4 sampled networks


def _device(model: nn.Module) -> torch.device:
    return next(model.parameters()).device


@torch.no_grad()
def accuracy(model: nn.Module, store: ImageStore, transform: Transform, batch_size: int,
             noise: torch.Generator | None = None) -> float:
    """Fraction of ``store`` classified correctly, in eval mode (running BN statistics)."""
    was_training = model.training
    model.eval()
    correct = torch.zeros((), dtype=torch.int64, device=_device(model))
    for x, y in iterate_batches(store, torch.arange(len(store)), batch_size, _device(model)):
        correct += (logits(model, transform(x, None), noise).argmax(dim=-1) == y).sum()
    model.train(was_training)
    return correct.item() / len(store)


@torch.no_grad()
def recompute_bn(model: nn.Module, inputs: Iterable[Tensor],
                 forward: Callable[[nn.Module, Tensor], Tensor] = lambda m, x: m(x)) -> None:
    """Reset and recompute the running statistics of every ``MetaBatchNorm2d`` and
    ``nn.BatchNorm*`` in ``model`` from the float batches ``inputs`` ([B, C, H, W] each).

    The equivalent of ``torch.optim.swa_utils.update_bn`` (which only sees ``_BatchNorm``):
    batch i (from 1) enters with momentum 1/i, so the result is the plain average of the batch
    statistics, as ``update_bn``'s ``momentum=None`` gives. Momenta and train/eval mode are
    restored afterwards.
    """
    layers = [m for m in model.modules() if isinstance(m, (MetaBatchNorm2d, _BatchNorm))]
    if not layers:
        return
    momenta = [m.momentum for m in layers]
    for m in layers:
        m.running_mean.zero_()
        m.running_var.fill_(1.0)
    was_training = model.training
    model.train()
    for i, x in enumerate(inputs, start=1):
        for m in layers:
            m.momentum = 1.0 / i
        forward(model, x)
    for m, momentum in zip(layers, momenta):
        m.momentum = momentum
    model.train(was_training)


def quadruple_faults(predictions: Tensor, labels: Tensor) -> int:
    """Number of samples that every network gets wrong.

    predictions: int [K, N] predicted classes of K networks (Ukai et al. use K = 4 weight samples
    of one Bayesian model; fewer such common faults means more diverse networks);
    labels: int [N]. Returns the count of n with predictions[k, n] != labels[n] for all k.
    """
    if predictions.dim() != 2 or labels.dim() != 1 or predictions.shape[1] != labels.shape[0]:
        raise ValueError(f"quadruple_faults needs predictions [K, N] and labels [N], got "
                         f"{tuple(predictions.shape)} and {tuple(labels.shape)}")
    return int((predictions != labels.unsqueeze(0)).all(dim=0).sum())


@torch.no_grad()
def bayesian_metrics(model: BayesianHyperModel, store: ImageStore, transform: Transform, batch_size: int,
                     samples: Sequence[int], generator: torch.Generator) -> dict[str, float | int]:
    """Ukai et al.'s test metrics: ``accuracy_x<n>`` for each n in ``samples`` (mean softmax
    over n weight samples, ``predict_averaged``, fresh samples per batch) and
    ``quadruple_faults`` of ``FAULT_NETWORKS`` networks, each one weight sample fixed for the
    whole test set. Eval mode; every draw comes from ``generator``."""
    was_training = model.training
    model.eval()
    device = _device(model)
    networks = [model.sample_noise(generator) for _ in range(FAULT_NETWORKS)]
    correct = {n: torch.zeros((), dtype=torch.int64, device=device) for n in samples}
    predictions = []
    for x, y in iterate_batches(store, torch.arange(len(store)), batch_size, device):
        x = transform(x, None)
        for n in samples:
            correct[n] += (model.predict_averaged(x, n, generator).argmax(dim=-1) == y).sum()
        predictions.append(torch.stack([model(x, noise=z).argmax(dim=-1) for z in networks]))
    model.train(was_training)
    result: dict[str, float | int] = {f"accuracy_x{n}": correct[n].item() / len(store) for n in samples}
    result["quadruple_faults"] = quadruple_faults(torch.cat(predictions, dim=1).cpu(), store.labels)
    return result
