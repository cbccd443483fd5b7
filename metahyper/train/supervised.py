"""The one supervised training loop, shared by pretraining (``metahyper.meta.pretrain``) and
classification (``metahyper.classify.train``): mini-batches gathered from an in-memory uint8
``ImageStore``, augmented on the device, cross-entropy plus the output-norm penalty, one
optimiser step per batch.

Optimiser and weight-decay policy (``param_groups``, ``build_optimizer``): weight decay applies
to the BODY (stem, 1x1 shortcuts, plain convs, BN) and CLASSIFIER parameters; the EMBEDDING and
HYPERNET parameters of a hypernetwork model are never decayed, whatever the output-norm penalty.
Why: Babu et al. regularise a generated kernel W = conv(E, H) through the penalty
``lambda * sum ||W||^2`` on W itself "instead of weight decay on E and H". Decay on the factors
is a different regulariser (it shrinks ||E||^2 + ||H||^2 and so rebalances the product, which
changes how much W moves when the inner loop adapts E), so it is not turned on as a stand-in
when the penalty is 0: a penalty of 0 then means "generated kernels unregularised", the
ablation of Babu et al.'s Table 2, and the body and head of plain and hyper models are decayed
alike, so plain and hyper runs differ only in the generated convs. Frozen parameters
(compressed embeddings) are left out of the optimiser.

Randomness: every random draw of an epoch comes from the ``EpochGenerators`` the caller passes
(shuffling, augmentation, Bayesian weight noise), never the global RNG, so a run resumed from an
epoch checkpoint reaches the same numbers as one that never stopped.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, NamedTuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from metahyper.data.rng import keyed_generator
from metahyper.data.stores import ImageStore
from metahyper.data.transforms import Transform
from metahyper.models.bayesian import BayesianHyperModel
from metahyper.models.hyperize import output_norm_penalty, record_kernels
from metahyper.models.roles import MetaModel, ParamRole

OPTIMIZERS = ("sgd", "adam")
UNDECAYED_ROLES = (ParamRole.EMBEDDING, ParamRole.HYPERNET)


class EpochGenerators(NamedTuple):
    """The random streams of one epoch: shuffling order, augmentation, Bayesian weight noise."""

    shuffle: torch.Generator
    augment: torch.Generator
    noise: torch.Generator

    @classmethod
    def keyed(cls, *key: object) -> "EpochGenerators":
        """The three streams keyed on ``key`` (e.g. ``("classify", seed, epoch)``) and the stream's name."""
        return cls(*(keyed_generator(*key, stream) for stream in cls._fields))


def param_groups(model: MetaModel, weight_decay: float) -> list[dict[str, Any]]:
    """Optimiser parameter groups, one per non-empty role (``name`` = role value): decay
    ``weight_decay`` on BODY and CLASSIFIER, 0 on EMBEDDING and HYPERNET (module docstring)."""
    groups = []
    for role, params in model.params_by_role().items():
        if params:
            decay = 0.0 if role in UNDECAYED_ROLES else weight_decay
            groups.append({"name": role.value, "params": list(params.values()), "weight_decay": decay})
    return groups


def build_optimizer(model: MetaModel, name: str, lr: float, weight_decay: float,
                    momentum: float = 0.9) -> torch.optim.Optimizer:
    """SGD with ``momentum`` (``name="sgd"``) or Adam (``"adam"``) over ``param_groups``."""
    if name not in OPTIMIZERS:
        raise ValueError(f"optimizer must be one of {OPTIMIZERS}, got {name!r}")
    groups = param_groups(model, weight_decay)
    if name == "adam":
        return torch.optim.Adam(groups, lr=lr)
    return torch.optim.SGD(groups, lr=lr, momentum=momentum)


def logits(model: nn.Module, x: Tensor, noise: torch.Generator | None) -> Tensor:
    """[B, C, H, W] -> [B, classes]; a Bayesian model draws its weight sample from ``noise``."""
    if isinstance(model, BayesianHyperModel):
        return model(x, generator=noise)
    return model(x)


def iterate_batches(store: ImageStore, order: Tensor, batch_size: int,
                    device: torch.device) -> Iterator[tuple[Tensor, Tensor]]:
    """Yield (uint8 images [b, C, H, W], int64 labels [b]) on ``device`` for consecutive
    chunks of ``order`` (int64 row indices [M]); the last batch may be smaller. Each batch is
    one ``index_select`` on the store's flat [N, C*H*W] view (the store may be memory-mapped)."""
    flat = store.images.view(len(store), -1)
    for idx in order.split(batch_size):
        x = flat.index_select(0, idx.to(flat.device)).view(len(idx), *store.image_shape)
        yield x.to(device, non_blocking=True), store.labels[idx].to(device, non_blocking=True)


def training_loss(model: nn.Module, x: Tensor, y: Tensor, penalty: float,
                  noise: torch.Generator | None) -> tuple[Tensor, Tensor]:
    """(cross-entropy + ``penalty`` * sum ||W||^2 over the kernels generated in this forward, logits)."""
    with record_kernels(model) as kernels:
        out = logits(model, x, noise)
    loss = F.cross_entropy(out, y)
    if kernels and penalty > 0:
        loss = loss + output_norm_penalty(model, penalty, kernels=kernels)
    return loss, out


def train_epoch(model: nn.Module, optimizer: torch.optim.Optimizer, store: ImageStore, transform: Transform,
                batch_size: int, penalty: float, generators: EpochGenerators) -> dict[str, float]:
    """One pass over ``store`` in the order drawn from ``generators.shuffle``, in train mode;
    ``transform(x, generators.augment)`` turns each uint8 batch into the model's input. Returns
    the mean loss (with the penalty) and accuracy of the batches as they were trained."""
    device = next(model.parameters()).device
    order = torch.randperm(len(store), generator=generators.shuffle)
    total, correct = torch.zeros((), device=device), torch.zeros((), device=device)
    model.train()
    for x, y in iterate_batches(store, order, batch_size, device):
        loss, out = training_loss(model, transform(x, generators.augment), y, penalty, generators.noise)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        total += loss.detach() * len(y)
        correct += (out.detach().argmax(dim=-1) == y).sum()
    return {"loss": total.item() / len(store), "accuracy": correct.item() / len(store)}
