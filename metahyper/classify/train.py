"""CIFAR-style classification training (Babu et al. Tables 1-6, Ha et al., Ukai et al.).

Recipe (docs/architecture.md section 7): SGD momentum 0.9, lr 0.1, 200 epochs of batch 128, lr x0.2 after
epochs 60, 120 and 160 (``MultiStepLR``), pad-4 random crop and horizontal flip on the device.

Regularisation: the shared policy of ``metahyper.train.supervised`` (``param_groups``): weight
decay 5e-4 on every parameter of a plain net and on the BODY and CLASSIFIER parameters of a
hypernetwork model; its EMBEDDING and HYPERNET parameters get no weight decay, the output-norm
penalty ``output_penalty * sum ||W||^2`` over the generated kernels is added to the loss
instead (Babu et al.: "instead of weight decay on E and H"). The same rule covers Ha's static
and Ukai's Bayesian models (their generated kernels are penalised; their hypernetworks are not
decayed). The epoch loop itself is ``metahyper.train.supervised.train_epoch``.

SWA (Izmailov et al.; ``swa: true``): from epoch ``swa_start`` on, the lr follows ``SWALR``
(cosine anneal to ``swa_lr`` over ``swa_anneal_epochs``) and the weights at the end of every
epoch are averaged by ``torch.optim.swa_utils.AveragedModel`` over the WHOLE model: embeddings
and hypernetworks (the paper's SWA) together with the plain layers trained alongside them. BN
statistics of the average are then recomputed on the training data (``recompute_bn``).

Determinism: shuffling, augmentation and Bayesian weight samples of epoch e come from
generators keyed on (seed, e), never the global RNG, so nothing random needs checkpointing and
a resumed run reaches bit-identical parameters on CPU.
"""

from __future__ import annotations

import json
import math
import os
import sys
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch
from torch.optim.lr_scheduler import MultiStepLR
from torch.optim.swa_utils import SWALR, AveragedModel
from tqdm import tqdm

from metahyper.atomic import write_text_atomic
from metahyper.checkpoint import resume_checkpoint, save_checkpoint
from metahyper.classify.evaluate import accuracy, bayesian_metrics, recompute_bn
from metahyper.config import config_hash as hash_config
from metahyper.data.presets import store_transforms
from metahyper.data.rng import keyed_generator
from metahyper.data.stores import ImageStore
from metahyper.data.transforms import Transform
from metahyper.meta.metrics_log import MetricsLog
from metahyper.meta.train import NonFiniteLossError
from metahyper.models.bayesian import BayesianHyperModel
from metahyper.models.roles import MetaModel
from metahyper.train import supervised
from metahyper.train.supervised import EpochGenerators, iterate_batches, logits

CHECKPOINT_NAME = "checkpoint.pt"
METRICS_NAME = "metrics.jsonl"
SWA_MODEL_NAME = "swa_model.pt"
RESULT_NAME = "result.json"


@dataclass(frozen=True)
class ClassifyConfig:
    """Classification settings; paper values as defaults. Epochs count from 1; ``milestones``
    are epochs after which the lr is multiplied by ``gamma``; SWA averages the weights at the
    end of epochs ``swa_start``..``epochs``."""

    epochs: int = 200
    batch_size: int = 128
    lr: float = 0.1
    momentum: float = 0.9
    milestones: tuple[int, ...] = (60, 120, 160)
    gamma: float = 0.2
    weight_decay: float = 5e-4  # plain parameters (all of a plain net; BODY/CLASSIFIER of a hyper net)
    output_penalty: float = 6.25e-5  # lambda of the output-norm penalty on generated kernels (0 = off)
    augment: bool = True  # pad-and-crop + horizontal flip
    pad: int = 4
    swa: bool = False
    swa_start: int = 161
    swa_lr: float = 0.05
    swa_anneal_epochs: int = 5
    eval_every: int = 1  # epochs between test-accuracy records
    eval_batch_size: int = 500
    bayes_samples: tuple[int, ...] = (1, 16)  # Ukai et al.'s model averaging (x1, x16)
    checkpoint_every: int = 1
    seed: int = 0

    def __post_init__(self) -> None:
        for name in ("epochs", "batch_size", "eval_every", "eval_batch_size", "checkpoint_every", "swa_start"):
            if getattr(self, name) < 1:
                raise ValueError(f"ClassifyConfig.{name} must be >= 1, got {getattr(self, name)}")
        if not (self.lr > 0 and 0 < self.gamma <= 1 and self.swa_lr > 0):
            raise ValueError("ClassifyConfig needs lr > 0, 0 < gamma <= 1 and swa_lr > 0")
        if min(self.weight_decay, self.output_penalty, self.momentum, self.pad, self.swa_anneal_epochs) < 0:
            raise ValueError("ClassifyConfig weight_decay, output_penalty, momentum, pad and swa_anneal_epochs must be >= 0")
        if list(self.milestones) != sorted(set(self.milestones)) or any(m < 1 for m in self.milestones):
            raise ValueError(f"ClassifyConfig.milestones must be increasing epochs >= 1, got {self.milestones}")
        if self.swa and self.swa_start > self.epochs:
            raise ValueError(f"ClassifyConfig.swa_start={self.swa_start} is after the last epoch {self.epochs}")
        if not self.bayes_samples or min(self.bayes_samples) < 1:
            raise ValueError(f"ClassifyConfig.bayes_samples must be sample counts >= 1, got {self.bayes_samples}")


@dataclass(frozen=True)
class ClassifyResult:
    """Final test accuracies (fractions): the last iterate, the SWA average (``swa: true``)
    and, for Ukai's Bayesian models, ``accuracy_x<n>`` and ``quadruple_faults``."""

    test_accuracy: float
    swa_accuracy: float | None = None
    bayes: dict[str, float | int] | None = None


def build_optimizer(model: MetaModel, cfg: ClassifyConfig) -> tuple[torch.optim.Optimizer, MultiStepLR, SWALR | None]:
    """SGD over the shared ``param_groups`` (``metahyper.train.supervised``), its ``MultiStepLR``
    and (``cfg.swa``) its ``SWALR``."""
    optimizer = supervised.build_optimizer(model, "sgd", cfg.lr, cfg.weight_decay, cfg.momentum)
    scheduler = MultiStepLR(optimizer, list(cfg.milestones), cfg.gamma)
    swa_scheduler = SWALR(optimizer, cfg.swa_lr, cfg.swa_anneal_epochs) if cfg.swa else None
    return optimizer, scheduler, swa_scheduler


def epoch_generator(seed: int, epoch: int, stream: str) -> torch.Generator:
    """The generator of ``stream`` ('shuffle', 'augment', 'noise', 'eval', 'bn') in ``epoch``."""
    return keyed_generator("classify", seed, epoch, stream)


@dataclass
class _Run:
    """The live objects of one training run and where they are saved."""

    model: MetaModel
    optimizer: torch.optim.SGD
    scheduler: MultiStepLR
    swa_scheduler: SWALR | None
    swa_model: AveragedModel | None
    folder: Path
    config_hash: str

    @property
    def stateful(self) -> dict[str, Any]:
        return {} if self.swa_model is None else {"swa_model": self.swa_model, "swa_scheduler": self.swa_scheduler}

    def save(self, epoch: int) -> None:
        save_checkpoint(self.folder / CHECKPOINT_NAME, iteration=epoch, config_hash=self.config_hash, model=self.model,
                        optimizer=self.optimizer, scheduler=self.scheduler, stateful=self.stateful)


def _run_epoch(run: _Run, train_store: ImageStore, test_store: ImageStore, transforms: tuple[Transform, Transform],
               cfg: ClassifyConfig, epoch: int) -> list[dict[str, Any]]:
    """Train one epoch, step the schedule, average (SWA); returns its metrics records."""
    lr = run.optimizer.param_groups[0]["lr"]
    stats = supervised.train_epoch(run.model, run.optimizer, train_store, transforms[0], cfg.batch_size,
                                   cfg.output_penalty, EpochGenerators.keyed("classify", cfg.seed, epoch))
    if not math.isfinite(stats["loss"]):
        raise NonFiniteLossError(f"classification training stopped in epoch {epoch}: mean training loss "
                                 f"{stats['loss']}; the last good checkpoint {run.folder / CHECKPOINT_NAME} is kept")
    if run.swa_model is not None and epoch >= cfg.swa_start:
        run.swa_model.update_parameters(run.model)
        run.swa_scheduler.step()
    else:
        run.scheduler.step()
    records = [{"kind": "train", "iteration": epoch, "epoch": epoch, "lr": lr, **stats}]
    if epoch % cfg.eval_every == 0 or epoch == cfg.epochs:
        test = accuracy(run.model, test_store, transforms[1], cfg.eval_batch_size,
                        epoch_generator(cfg.seed, epoch, "eval"))
        records.append({"kind": "val", "split": "test", "iteration": epoch, "epoch": epoch, "accuracy": test})
    return records


def _finish(run: _Run, train_store: ImageStore, test_store: ImageStore, transforms: tuple[Transform, Transform],
            cfg: ClassifyConfig) -> ClassifyResult:
    """Final test accuracy, SWA average with recomputed BN (saved), Bayesian metrics."""
    test_tf, final = transforms[1], epoch_generator(cfg.seed, cfg.epochs, "eval")
    bayes = None
    if isinstance(run.model, BayesianHyperModel):
        bayes = bayesian_metrics(run.model, test_store, test_tf, cfg.eval_batch_size, cfg.bayes_samples, final)
    swa_accuracy = None
    if run.swa_model is not None:
        averaged = run.swa_model.module
        bn, noise = (epoch_generator(cfg.seed, cfg.epochs, s) for s in ("bn", "noise"))
        order = torch.randperm(len(train_store), generator=bn)
        inputs = (transforms[0](x, bn) for x, _ in iterate_batches(
            train_store, order, cfg.batch_size, next(averaged.parameters()).device))
        recompute_bn(averaged, inputs, lambda m, x: logits(m, x, noise))
        save_checkpoint(run.folder / SWA_MODEL_NAME, iteration=cfg.epochs, config_hash=run.config_hash, model=averaged)
        swa_accuracy = accuracy(averaged, test_store, test_tf, cfg.eval_batch_size, final)
    test_accuracy = accuracy(run.model, test_store, test_tf, cfg.eval_batch_size, final)
    return ClassifyResult(test_accuracy, swa_accuracy, bayes)


def train_classifier(
    model: MetaModel,
    train_store: ImageStore,
    test_store: ImageStore,
    cfg: ClassifyConfig,
    run_dir: str | os.PathLike,
    resume: bool = False,
    *,
    force: bool = False,
    config_hash: str | None = None,
    progress: bool | None = None,
    on_epoch: Callable[[int, MetaModel], None] | None = None,
    tensorboard: bool = False,
) -> ClassifyResult:
    """Train ``model`` (on its device; head = number of classes) on ``train_store`` and test on
    ``test_store`` (uint8 stores on the CPU, same classes). Writes into ``run_dir``:
    ``checkpoint.pt`` (every ``cfg.checkpoint_every`` epochs; ``resume=True`` continues from it),
    ``metrics.jsonl`` ("train" records: epoch, lr, loss, accuracy; "val" records: test
    accuracy, read by ``metahyper.eval.plots.plot_validation``), ``swa_model.pt`` and
    ``result.json``. ``config_hash`` (default: hash of ``cfg``) should identify the whole run
    (model, data, config); resuming under another hash is refused unless ``force``.
    ``on_epoch(epoch, model)`` is called after each epoch's checkpoint. ``tensorboard`` mirrors
    the JSONL records into ``run_dir/tb/`` (``metahyper.meta.metrics_log``).
    """
    if model.classifier.out_features != train_store.num_classes or test_store.num_classes != train_store.num_classes:
        raise ValueError(f"model head has {model.classifier.out_features} outputs, train store {train_store.num_classes} "
                         f"classes, test store {test_store.num_classes}: they must agree")
    folder = Path(run_dir)
    optimizer, scheduler, swa_scheduler = build_optimizer(model, cfg)
    run = _Run(model, optimizer, scheduler, swa_scheduler, AveragedModel(model) if cfg.swa else None, folder,
               config_hash or hash_config(cfg))
    done = resume_checkpoint(folder / CHECKPOINT_NAME, resume=resume, force=force, config_hash=run.config_hash,
                             model=model, optimizer=optimizer, scheduler=scheduler, stateful=run.stateful)
    log = MetricsLog(folder / METRICS_NAME, tensorboard=tensorboard)
    log.truncate_after(done)
    transforms = store_transforms(train_store, cfg.augment, cfg.pad)
    show = sys.stderr.isatty() if progress is None else progress
    for epoch in tqdm(range(done + 1, cfg.epochs + 1), initial=done, total=cfg.epochs, disable=not show, desc="classify"):
        for record in _run_epoch(run, train_store, test_store, transforms, cfg, epoch):
            log.append(record)
        if epoch % cfg.checkpoint_every == 0 or epoch == cfg.epochs:
            run.save(epoch)
        if on_epoch is not None:
            on_epoch(epoch, model)
    log.close()
    result = _finish(run, train_store, test_store, transforms, cfg)
    write_text_atomic(folder / RESULT_NAME, json_text({"config_hash": run.config_hash, **asdict(result)}))
    return result


def json_text(document: Any) -> str:
    """Strict, indented JSON with a final newline (non-finite floats refused)."""
    return json.dumps(document, indent=2, allow_nan=False) + "\n"
