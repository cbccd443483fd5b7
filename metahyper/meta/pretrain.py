"""Supervised pretraining before MAML (docs/architecture.md section 7).

Cross-entropy over all classes of the source train split, batched from an in-memory uint8 store
and augmented on the device in one call per batch, SGD or Adam; then the head is replaced by a
fresh ``way``-output classifier. Everything random is keyed on (seed, epoch): the shuffling
order, the augmentation generator and the final head's initialisation, so a run is determined
by its seed and resumes (per epoch, from ``pretrain_checkpoint.pt``) to identical numbers.

Hypernetwork models: embeddings and hypernetworks are regularised by the output-norm penalty
``lambda * sum ||W||^2`` on the generated kernels instead of weight decay (Babu et al.;
docs/architecture.md section 6); weight decay then applies to the other parameters only.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor
from tqdm import tqdm

from metahyper.checkpoint import resume_checkpoint, save_checkpoint
from metahyper.config import config_hash as hash_config
from metahyper.meta.metrics_log import MetricsLog
from metahyper.models.hyperize import output_norm_penalty, record_kernels
from metahyper.models.roles import MetaModel, ParamRole
from metahyper.progress import status_lines

CHECKPOINT_NAME = "pretrain_checkpoint.pt"
PRETRAINED_NAME = "pretrained.pt"
METRICS_NAME = "pretrain_metrics.jsonl"
OPTIMIZERS = ("sgd", "adam")
Transform = Callable[[Tensor, "torch.Generator | None"], Tensor]  # uint8 [B, C, H, W] -> float


@dataclass(frozen=True)
class PretrainConfig:
    """Pretraining settings; ``lr_milestones`` are epochs where the lr is multiplied by ``lr_gamma``."""

    epochs: int = 100
    batch_size: int = 128
    optimizer: str = "sgd"  # "sgd" | "adam"
    lr: float = 0.1
    momentum: float = 0.9
    weight_decay: float = 5e-4
    lr_milestones: tuple[int, ...] = ()
    lr_gamma: float = 0.1
    output_norm_penalty: float = 0.0  # lambda for hyper models (paper: 6.25e-5)
    way: int = 5
    seed: int = 0
    checkpoint_every: int = 1  # epochs

    def __post_init__(self) -> None:
        for name in ("epochs", "batch_size", "way", "checkpoint_every"):
            if getattr(self, name) < 1:
                raise ValueError(f"PretrainConfig.{name} must be >= 1, got {getattr(self, name)}")
        if self.optimizer not in OPTIMIZERS:
            raise ValueError(f"PretrainConfig.optimizer must be one of {OPTIMIZERS}, got {self.optimizer!r}")
        if not self.lr > 0 or self.weight_decay < 0 or self.output_norm_penalty < 0:
            raise ValueError("PretrainConfig needs lr > 0, weight_decay >= 0 and output_norm_penalty >= 0")


def _key(seed: int, epoch: int, stream: int) -> int:
    """Seed of random stream ``stream`` (0 shuffle, 1 augmentation, 2 head init) in ``epoch``."""
    return (seed * 1_000_003 + epoch) * 7 + stream


def _keyed(seed: int, epoch: int, stream: int) -> torch.Generator:
    return torch.Generator().manual_seed(_key(seed, epoch, stream))


def build_optimizer(model: MetaModel, cfg: PretrainConfig) -> torch.optim.Optimizer:
    """SGD (momentum) or Adam; no weight decay on EMBEDDING/HYPERNET when the penalty is on."""
    groups = model.params_by_role()
    generated = (ParamRole.EMBEDDING, ParamRole.HYPERNET) if cfg.output_norm_penalty > 0 else ()
    decayed = [p for role, g in groups.items() if role not in generated for p in g.values()]
    exempt = [p for role in generated for p in groups[role].values()]
    param_groups = [{"params": decayed, "weight_decay": cfg.weight_decay}, {"params": exempt, "weight_decay": 0.0}]
    if cfg.optimizer == "adam":
        return torch.optim.Adam(param_groups, lr=cfg.lr)
    return torch.optim.SGD(param_groups, lr=cfg.lr, momentum=cfg.momentum)


def check_store(images: Tensor, labels: Tensor) -> None:
    """Raise a ValueError naming the argument unless images is uint8 [N, C, H, W] and labels int64 [N]."""
    if images.dtype != torch.uint8 or images.dim() != 4 or len(images) == 0:
        got = f"{images.dtype} {tuple(images.shape)}"
        raise ValueError(f"images must be a non-empty uint8 [N, C, H, W] tensor, got {got}")
    if labels.dtype != torch.int64 or labels.shape != images.shape[:1]:
        raise ValueError(f"labels must be int64 of shape [{len(images)}], got {labels.dtype} {tuple(labels.shape)}")


def train_epoch(
    model: MetaModel,
    optimizer: torch.optim.Optimizer,
    images: Tensor,
    targets: Tensor,
    transform: Transform,
    cfg: PretrainConfig,
    epoch: int,
) -> dict[str, float]:
    """One shuffled pass over ``images`` [N, C, H, W] uint8 with class indices ``targets`` [N];
    mean loss (with the penalty) and accuracy of the batches as they were trained."""
    device = next(model.parameters()).device
    flat = images.reshape(len(images), -1)
    order, augment = torch.randperm(len(images), generator=_keyed(cfg.seed, epoch, 0)), _keyed(cfg.seed, epoch, 1)
    total_loss, correct = torch.zeros((), device=device), torch.zeros((), device=device)
    for idx in order.split(cfg.batch_size):
        x = flat.index_select(0, idx).view(len(idx), *images.shape[1:]).to(device, non_blocking=True)
        y = targets[idx].to(device, non_blocking=True)
        with record_kernels(model) as kernels:
            logits = model(transform(x, augment))
        loss = F.cross_entropy(logits, y)
        if cfg.output_norm_penalty > 0:
            loss = loss + output_norm_penalty(model, cfg.output_norm_penalty, kernels=kernels)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        total_loss += loss.detach() * len(idx)
        correct += (logits.detach().argmax(dim=-1) == y).sum()
    return {"loss": total_loss.item() / len(images), "accuracy": correct.item() / len(images)}


def pretrain(
    model: MetaModel,
    images: Tensor,
    labels: Tensor,
    transform: Transform,
    cfg: PretrainConfig,
    run_dir: str | os.PathLike | None = None,
    *,
    resume: bool = False,
    force: bool = False,
    config_hash: str | None = None,
    progress: bool | None = None,
    name: str = "pretraining",
    tensorboard: bool = False,
) -> list[dict[str, Any]]:
    """Pretrain ``model`` (on its device) on every class in ``labels``; returns per-epoch records.

    images: uint8 [N, C, H, W] (CPU, may be memory-mapped); labels: int64 [N] with any class ids
    (mapped to 0..K-1; the head is resized to K outputs). ``transform(x, generator)`` turns a
    uint8 batch on the device into float (augmentation draws from ``generator``). With a
    ``run_dir``, checkpoints every ``cfg.checkpoint_every`` epochs, logs JSONL, and finally saves
    the model (head reset to ``cfg.way``) as ``pretrained.pt``. ``name`` names the run in the
    "resuming ..." line printed on resume. ``tensorboard`` mirrors the JSONL records into
    ``run_dir/tb/`` (``metahyper.meta.metrics_log``).
    """
    check_store(images, labels)
    classes, targets = torch.unique(labels, return_inverse=True)
    if model.classifier.out_features != len(classes):
        _seeded(cfg.seed, -1, lambda: model.reset_classifier(len(classes)))
    optimizer = build_optimizer(model, cfg)
    scheduler = torch.optim.lr_scheduler.MultiStepLR(optimizer, list(cfg.lr_milestones), cfg.lr_gamma)
    folder, digest = Path(run_dir or "."), config_hash or hash_config(cfg)
    log = MetricsLog(folder / METRICS_NAME, enabled=run_dir is not None, tensorboard=tensorboard)
    trained = {"config_hash": digest, "model": model, "optimizer": optimizer, "scheduler": scheduler}
    done = 0 if run_dir is None else resume_checkpoint(folder / CHECKPOINT_NAME, resume=resume, force=force, **trained)
    log.truncate_after(done)
    if done:
        tqdm.write(f"resuming {name} from epoch {done} (checkpoint {folder / CHECKPOINT_NAME})", file=sys.stderr)
    history, show = [], sys.stderr.isatty() if progress is None else progress
    model.train()
    epochs = range(done + 1, cfg.epochs + 1)
    status = status_lines(show, "pretrain", str(folder), cfg.epochs, done)
    for epoch in tqdm(epochs, initial=done, total=cfg.epochs, disable=not show, desc="pretrain"):
        record = {"epoch": epoch, "iteration": epoch, "lr": scheduler.get_last_lr()[0],
                  **train_epoch(model, optimizer, images, targets, transform, cfg, epoch)}
        scheduler.step()
        history.append(record)
        log.append(record)
        if status is not None:
            status.update(epoch, record["loss"])
        if run_dir is not None and (epoch % cfg.checkpoint_every == 0 or epoch == cfg.epochs):
            save_checkpoint(folder / CHECKPOINT_NAME, iteration=epoch, **trained)
    log.close()
    _seeded(cfg.seed, cfg.epochs, lambda: model.reset_classifier(cfg.way))
    if run_dir is not None:
        save_checkpoint(folder / PRETRAINED_NAME, iteration=cfg.epochs, config_hash=digest, model=model)
    return history


def _seeded(seed: int, epoch: int, fn: Callable[[], None]) -> None:
    """Run ``fn`` (a layer initialisation) with the global RNG seeded from (seed, epoch), restoring it after."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(_key(seed, epoch, 2))
        fn()
