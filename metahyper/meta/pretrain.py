"""Supervised pretraining before MAML (docs/architecture.md section 7).

Cross-entropy over all classes of the source train split, batched from an in-memory uint8 store
and augmented on the device in one call per batch, SGD or Adam; then the head is replaced by a
fresh ``way``-output classifier. Everything random is keyed on (seed, epoch): the shuffling
order, the augmentation generator and the final head's initialisation, so a run is determined
by its seed and resumes (per epoch, from ``pretrain_checkpoint.pt``) to identical numbers.

The epoch loop, the optimiser and its weight-decay policy are the ones classification uses
(``metahyper.train.supervised``): hypernetwork models' embeddings and hypernetworks are never
decayed; the output-norm penalty ``lambda * sum ||W||^2`` on the generated kernels regularises
them instead (Babu et al.), weight decay applies to the other parameters.
"""

from __future__ import annotations

import math
import os
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import Tensor
from tqdm import tqdm

from metahyper.checkpoint import resume_checkpoint, resume_line, save_checkpoint
from metahyper.config import config_hash as hash_config, to_dict
from metahyper.meta.metrics_log import PRETRAIN_LOG, MetricsLog
from metahyper.data.stores import ImageStore
from metahyper.data.transforms import Transform
from metahyper.models.heads import use_cosine_head
from metahyper.models.roles import MetaModel
from metahyper.progress import status_lines
from metahyper.train.supervised import OPTIMIZERS, EpochGenerators, build_optimizer, train_epoch

CHECKPOINT_NAME = "pretrain_checkpoint.pt"
PRETRAINED_NAME = "pretrained.pt"
METRICS_NAME = PRETRAIN_LOG
HEADS = ("linear", "cosine")
MAX_BATCH_SIZE = 1 << 16


@dataclass(frozen=True)
class PretrainConfig:
    """Pretraining settings; ``lr_milestones`` are epochs where the lr is multiplied by ``lr_gamma``.
    ``epochs: 0`` means no pretraining: the stage saves the seeded initial model (with its fresh
    ``way``-output head), for methods that train better from scratch (ProtoNet on Omniglot).
    ``head``: the classifier over all training classes, ``linear`` or ``cosine`` (a cosine-similarity
    head with a learnable scale, ``metahyper.models.heads.CosineClassifier``: the pretraining of
    Chen et al.'s Meta-Baseline); either way the saved model ends with a fresh linear ``way`` head."""

    epochs: int = 100
    batch_size: int = 128
    optimizer: str = "sgd"  # "sgd" | "adam"
    lr: float = 0.1
    momentum: float = 0.9
    weight_decay: float = 5e-4
    lr_milestones: tuple[int, ...] = ()
    lr_gamma: float = 0.1
    output_norm_penalty: float = 0.0  # lambda for hyper models (paper: 6.25e-5)
    seed: int = 0
    checkpoint_every: int = 1  # epochs
    head: str = "linear"

    def __post_init__(self) -> None:
        if self.epochs < 0:
            raise ValueError(f"PretrainConfig.epochs must be >= 0 (0: no pretraining), got {self.epochs}")
        for name in ("batch_size", "checkpoint_every"):
            if getattr(self, name) < 1:
                raise ValueError(f"PretrainConfig.{name} must be >= 1, got {getattr(self, name)}")
        if self.optimizer not in OPTIMIZERS:
            raise ValueError(f"PretrainConfig.optimizer must be one of {OPTIMIZERS}, got {self.optimizer!r}")
        if not self.lr > 0 or self.weight_decay < 0 or self.output_norm_penalty < 0:
            raise ValueError("PretrainConfig needs lr > 0, weight_decay >= 0 and output_norm_penalty >= 0")
        numbers = ("lr", "momentum", "weight_decay", "lr_gamma", "output_norm_penalty")
        bad = [f"{name}={getattr(self, name)}" for name in numbers if not math.isfinite(getattr(self, name))]
        if bad:
            raise ValueError(f"PretrainConfig needs finite numbers, got {', '.join(bad)}")
        if self.batch_size > MAX_BATCH_SIZE:
            raise ValueError(f"PretrainConfig.batch_size must be <= {MAX_BATCH_SIZE}, got {self.batch_size}")
        if self.head not in HEADS:
            raise ValueError(f"PretrainConfig.head must be one of {HEADS}, got {self.head!r}")

    def hashed(self) -> dict[str, Any]:
        """The settings as hashes see them: ``head`` only when it is not ``linear`` (added later;
        folders from before it keep their hash)."""
        return {k: v for k, v in to_dict(self).items() if not (k == "head" and v == "linear")}


def _key(seed: int, epoch: int, stream: int) -> int:
    """Seed of random stream ``stream`` (0 shuffle, 1 augmentation, 2 head init) in ``epoch``."""
    return (seed * 1_000_003 + epoch) * 7 + stream


def _generators(seed: int, epoch: int) -> EpochGenerators:
    return EpochGenerators(*(torch.Generator().manual_seed(_key(seed, epoch, stream)) for stream in (0, 1, 3)))


def check_store(images: Tensor, labels: Tensor) -> None:
    """Raise a ValueError naming the argument unless images is uint8 [N, C, H, W] and labels int64 [N]."""
    if images.dtype != torch.uint8 or images.dim() != 4 or len(images) == 0:
        got = f"{images.dtype} {tuple(images.shape)}"
        raise ValueError(f"images must be a non-empty uint8 [N, C, H, W] tensor, got {got}")
    if labels.dtype != torch.int64 or labels.shape != images.shape[:1]:
        raise ValueError(f"labels must be int64 of shape [{len(images)}], got {labels.dtype} {tuple(labels.shape)}")


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
    way: int = 5,
    tensorboard: bool = False,
) -> list[dict[str, Any]]:
    """Pretrain ``model`` (on its device) on every class in ``labels``; returns per-epoch records.

    images: uint8 [N, C, H, W] (CPU, may be memory-mapped); labels: int64 [N] with any class ids
    (mapped to 0..K-1; the head is resized to K outputs, cosine with ``cfg.head``). ``transform(x, generator)`` turns a
    uint8 batch on the device into float (augmentation draws from ``generator``). With a
    ``run_dir``, checkpoints every ``cfg.checkpoint_every`` epochs, logs JSONL, and finally saves
    the model (head reset to ``way`` outputs, the way of the episodes that follow) as
    ``pretrained.pt``. ``name`` names the run in the "resuming ..." line printed on resume.
    ``tensorboard`` mirrors the JSONL records into ``run_dir/tb/`` (``metahyper.meta.metrics_log``).
    """
    check_store(images, labels)
    if isinstance(way, bool) or not isinstance(way, int) or way < 1:
        raise ValueError(f"way (the final head's outputs) must be an int >= 1, got {way!r}")
    classes, targets = torch.unique(labels, return_inverse=True)
    if model.classifier.out_features != len(classes):
        _seeded(cfg.seed, -1, lambda: model.reset_classifier(len(classes)))
    if cfg.head == "cosine":
        _seeded(cfg.seed, -1, lambda: use_cosine_head(model, len(classes)))
    optimizer = build_optimizer(model, cfg.optimizer, cfg.lr, cfg.weight_decay, cfg.momentum)
    store = ImageStore(images, targets, [str(c) for c in classes.tolist()])
    scheduler = torch.optim.lr_scheduler.MultiStepLR(optimizer, list(cfg.lr_milestones), cfg.lr_gamma)
    folder, digest = Path(run_dir or "."), config_hash or hash_config({**cfg.hashed(), "way": way})
    log = MetricsLog(folder / METRICS_NAME, enabled=run_dir is not None, tensorboard=tensorboard)
    trained = {"config_hash": digest, "model": model, "optimizer": optimizer, "scheduler": scheduler}
    done = 0 if run_dir is None else resume_checkpoint(folder / CHECKPOINT_NAME, resume=resume, force=force, **trained)
    log.truncate_after(done)
    if done:
        tqdm.write(resume_line(name, "epoch", done, cfg.epochs, folder / CHECKPOINT_NAME), file=sys.stderr)
    history, show = [], sys.stderr.isatty() if progress is None else progress
    model.train()
    epochs = range(done + 1, cfg.epochs + 1)
    status = status_lines(show, "pretrain", str(folder), cfg.epochs, done, unit="epoch")
    for epoch in tqdm(epochs, initial=done, total=cfg.epochs, disable=not show, desc="pretrain"):
        record = {"epoch": epoch, "iteration": epoch, "lr": scheduler.get_last_lr()[0],
                  **train_epoch(model, optimizer, store, transform, cfg.batch_size, cfg.output_norm_penalty,
                                _generators(cfg.seed, epoch))}
        scheduler.step()
        history.append(record)
        log.append(record)
        if status is not None:
            status.update(epoch, record["loss"])
        if run_dir is not None and (epoch % cfg.checkpoint_every == 0 or epoch == cfg.epochs):
            save_checkpoint(folder / CHECKPOINT_NAME, iteration=epoch, **trained)
    log.close()
    _seeded(cfg.seed, cfg.epochs, lambda: model.reset_classifier(way))
    if run_dir is not None:
        save_checkpoint(folder / PRETRAINED_NAME, iteration=cfg.epochs, config_hash=digest, model=model)
    return history


def _seeded(seed: int, epoch: int, fn: Callable[[], None]) -> None:
    """Run ``fn`` (a layer initialisation) with the global RNG seeded from (seed, epoch), restoring it after."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(_key(seed, epoch, 2))
        fn()
