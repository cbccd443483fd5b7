"""The meta-training loop (docs/architecture.md sections 7 and 11; Babu et al., Algorithm 2).

Outer optimiser: Adam on the method's outer parameters only (``metahyper.meta.methods``; MAML:
the outer roles), lr 1e-3 halved every 1000 iterations
down to 1e-4; meta-batch 4. Every iteration takes its episodes from a sampler keyed on the step
(and rank), so a resumed or multi-process run sees exactly the episodes of an unbroken single
run. Writes ``metrics.jsonl`` and ``checkpoint.pt`` into the run folder; ``resume=True``
continues from the checkpoint and reaches bit-identical parameters on CPU. An iteration's
validation is logged before its checkpoint is written, so a run stopped during that validation
resumes from the checkpoint before it and validates again: no point of the curve is lost.

Distributed (``torchrun``; the process group initialised by the caller): each rank takes
meta_batch / world_size tasks, backpropagates locally, gradients are all-reduce-averaged, then
every rank steps. Rank 0 alone logs, validates and checkpoints; every rank reads the checkpoint
on resume, so the run folder must be on a file system that all ranks share. Rank 0's parameters
are broadcast at the start. Validation runs on rank 0 while the others wait in the next
all-reduce: keep it shorter than the process group's timeout.
"""

from __future__ import annotations

import math
import os
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import torch
from tqdm import tqdm

from metahyper.checkpoint import resume_checkpoint, resume_line, save_checkpoint
from metahyper.config import config_hash as hash_config, to_dict
from metahyper.data.episodes import TaskBatch
from metahyper.data.rng import keyed_generator
from metahyper.data.transforms import Transform
from metahyper.errors import NonFiniteLossError
from metahyper.meta.distributed import average_gradients, average_scalars, broadcast_state, world
from metahyper.meta.maml import MamlConfig
from metahyper.meta.methods import Method, make_method
from metahyper.meta.metrics import norm_grad_ratios, weight_norms
from metahyper.meta.metrics_log import META_TRAIN_LOG, MetricsLog
from metahyper.models.roles import MetaModel
from metahyper.models.wrap import require_meta_model
from metahyper.progress import status_lines

CHECKPOINT_NAME = "checkpoint.pt"
METRICS_NAME = META_TRAIN_LOG
MAX_META_BATCH = 4096  # tasks per outer step; each holds a way x (shot + query) batch of images
Validate = Callable[[MetaModel, int], Mapping[str, float]]


class TaskSampler(Protocol):
    """Episodes keyed on the step: ``tasks`` is the whole meta-batch, of which rank ``rank`` of
    ``world_size`` receives its ``tasks // world_size`` (uint8 images)."""

    def sample_for(self, step: int, rank: int, world_size: int, tasks: int) -> TaskBatch: ...


@dataclass(frozen=True)
class MetaTrainConfig:
    """Meta-training settings (paper values as defaults)."""

    iterations: int = 10_000
    meta_batch: int = 4
    outer_lr: float = 1e-3
    lr_halve_every: int = 1000
    min_lr: float = 1e-4
    checkpoint_every: int = 500
    validate_every: int = 1000
    diagnostics_every: int = 100  # inner-loop movement and ||P||/||grad P|| in the log
    seed: int = 0  # keys the transform's generator (random augmentation)
    maml: MamlConfig = field(default_factory=MamlConfig)

    def __post_init__(self) -> None:
        counts = ("iterations", "meta_batch", "lr_halve_every", "checkpoint_every", "validate_every", "diagnostics_every")
        for name in counts:
            if getattr(self, name) < 1:
                raise ValueError(f"MetaTrainConfig.{name} must be >= 1, got {getattr(self, name)}")
        if self.meta_batch > MAX_META_BATCH:
            raise ValueError(f"MetaTrainConfig.meta_batch must be <= {MAX_META_BATCH}, got {self.meta_batch}")
        if not (math.isfinite(self.outer_lr) and math.isfinite(self.min_lr)):
            raise ValueError(f"MetaTrainConfig needs finite learning rates, got outer_lr={self.outer_lr} and "
                             f"min_lr={self.min_lr}")
        if not 0 < self.min_lr <= self.outer_lr:
            raise ValueError(f"MetaTrainConfig needs 0 < min_lr <= outer_lr, got {self.min_lr} and {self.outer_lr}")


def lr_factor(cfg: MetaTrainConfig) -> Callable[[int], float]:
    """Scheduler factor: 0.5 ** (iteration // lr_halve_every), floored at min_lr / outer_lr."""
    floor = cfg.min_lr / cfg.outer_lr
    return lambda iteration: max(0.5 ** (iteration // cfg.lr_halve_every), floor)


def transform_generator(seed: int, step: int, rank: int) -> torch.Generator:
    """The transform's generator for one step of one rank (keyed: nothing to checkpoint)."""
    return keyed_generator("meta-train-transform", seed, step, rank)


def prepare_batch(
    batch: TaskBatch, transform: Transform, generator: torch.Generator, device: torch.device
) -> TaskBatch:
    """Move a uint8 TaskBatch to ``device`` and apply ``transform(images, generator)``."""
    fields = (batch.support_x, batch.support_y, batch.query_x, batch.query_y)
    moved = TaskBatch(*(t.to(device, non_blocking=True) for t in fields))
    return moved.map_images(lambda x: transform(x, generator))


@dataclass
class _Run:
    """The live objects of one meta-training run."""

    model: MetaModel
    method: Method
    params: list[torch.nn.Parameter]
    optimizer: torch.optim.Optimizer
    scheduler: torch.optim.lr_scheduler.LambdaLR
    stateful: dict[str, Any]
    checkpoint: Path
    config_hash: str
    saved: int = 0  # iteration of the checkpoint on disk (0: none yet)


def train_step(
    run: _Run, sampler: TaskSampler, transform: Transform, cfg: MetaTrainConfig, iteration: int
) -> dict[str, Any]:
    """One outer step (iteration counts from 1; the sampler's step is ``iteration - 1``)."""
    rank, size = world()
    device = run.params[0].device
    generator = transform_generator(cfg.seed, iteration - 1, rank)
    batch = prepare_batch(sampler.sample_for(iteration - 1, rank, size, cfg.meta_batch), transform, generator, device)
    run.optimizer.zero_grad(set_to_none=True)
    diagnose = iteration % cfg.diagnostics_every == 0
    out = run.method.step(run.model, batch, track_movement=diagnose)
    average_gradients(run.params)
    grad_norm = torch.nn.utils.get_total_norm([p.grad for p in run.params if p.grad is not None])
    loss, accuracy, grad_norm = average_scalars(out.loss, out.accuracy, grad_norm)
    if not (math.isfinite(loss) and math.isfinite(grad_norm)):
        raise NonFiniteLossError(
            f"meta-training stopped at iteration {iteration} (sampler step {iteration - 1}): loss {loss}, "
            f"gradient norm {grad_norm}; the model was not updated. {_on_disk(run, cfg)}"
        )
    record = {"kind": "train", "iteration": iteration, "loss": loss, "accuracy": accuracy,
              "lr": run.scheduler.get_last_lr()[0], "grad_norm": grad_norm}
    if diagnose:
        record |= {"movement": out.movement, "norm_grad_ratio": norm_grad_ratios(run.model)}
        if out.movement:  # the inner loop's starting norms, for relative movement (before the outer step)
            record["weight_norm"] = weight_norms(run.model)
    run.optimizer.step()
    run.scheduler.step()
    return record


def _start_run(model: MetaModel, method: Method, sampler: TaskSampler, transform: Transform, cfg: MetaTrainConfig,
               run_dir: Path, config_hash: str) -> _Run:
    getattr(method, "prepare", lambda _: None)(model)  # the method's own parameters (Meta-Baseline's temperature)
    params = method.outer_parameters(model)
    optimizer = torch.optim.Adam(params, lr=cfg.outer_lr)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lr_factor(cfg))
    candidates = (("sampler", sampler), ("transform", transform))
    stateful = {name: obj for name, obj in candidates if hasattr(obj, "state_dict")}
    return _Run(model, method, params, optimizer, scheduler, stateful, run_dir / CHECKPOINT_NAME, config_hash)


def _save(run: _Run, iteration: int) -> None:
    save_checkpoint(run.checkpoint, iteration=iteration, config_hash=run.config_hash, model=run.model,
                    optimizer=run.optimizer, scheduler=run.scheduler, stateful=run.stateful)
    run.saved = iteration


def _on_disk(run: _Run, cfg: MetaTrainConfig) -> str:
    """What a stopped run leaves to resume from, for its error message."""
    if run.saved:
        return f"The last good checkpoint, {run.checkpoint} (iteration {run.saved}), is kept."
    return (f"No checkpoint of this run exists yet (the first is written at iteration {cfg.checkpoint_every}), "
            "so a rerun starts from iteration 1.")


def _validation_point(validate: Validate, model: MetaModel, log: MetricsLog, iteration: int) -> float | None:
    """Validate at ``iteration`` and log it as a ``"val"`` record; returns its accuracy."""
    scores = validate(model, iteration)
    log.append({"kind": "val", "iteration": iteration, **scores})
    return scores.get("accuracy")


def _missing_validation(validate: Validate | None, model: MetaModel, log: MetricsLog, cfg: MetaTrainConfig,
                        done: int) -> float | None:
    """On resume from iteration ``done``: the validation due there, when the log lacks it (a run
    folder of a version that checkpointed before validating, stopped during that validation)."""
    if validate is None or not done or done % cfg.validate_every:
        return None
    if any(r.get("kind") == "val" and r.get("iteration") == done for r in log.read()):
        return None
    return _validation_point(validate, model, log, done)


def meta_train(
    model: MetaModel,
    sampler: TaskSampler,
    transform: Transform,
    cfg: MetaTrainConfig,
    run_dir: str | os.PathLike,
    *,
    validate: Validate | None = None,
    resume: bool = False,
    force: bool = False,
    config_hash: str | None = None,
    progress: bool | None = None,
    name: str = "meta-training",
    method: str = "maml",
    tensorboard: bool = False,
) -> dict[str, Any]:
    """Meta-train ``model`` (on its device) for ``cfg.iterations`` outer steps; returns the last record.

    ``model`` is a ``MetaModel`` (a plain module: ``metahyper.as_meta_model``; anything else is
    refused before any work with a TypeError that says what to provide).

    ``validate(model, iteration)`` runs every ``cfg.validate_every`` iterations on rank 0; its
    numbers go to the log as a ``"val"`` record. ``config_hash`` (default: hash of ``cfg``)
    should cover everything that defines the run (model, data, seeds); resuming under another
    hash is refused unless ``force``. ``progress`` (a tqdm bar) defaults to "stderr is a
    terminal"; without a bar, rank 0 logs plain status lines (``metahyper.progress``). ``name``
    names the run in the "resuming ..." (or "... is already finished") line printed on resume. ``method`` names the meta-learner
    (``metahyper.meta.methods``; its settings come from ``cfg``); the default hash covers it
    when it is not ``maml`` (so MAML runs keep the hash they had before methods existed).
    ``tensorboard`` mirrors the JSONL records into ``run_dir/tb/`` (``metahyper.meta.metrics_log``).
    """
    require_meta_model(model, "meta_train")
    rank, size = world()
    if cfg.meta_batch % size:
        raise ValueError(f"MetaTrainConfig.meta_batch={cfg.meta_batch} is not divisible by the world size {size}")
    run_dir = Path(run_dir)
    hashed = cfg if method == "maml" else {**to_dict(cfg), "method": method}
    run = _start_run(model, make_method(method, cfg), sampler, transform, cfg, run_dir,
                     config_hash or hash_config(hashed))
    log = MetricsLog(run_dir / METRICS_NAME, enabled=rank == 0, tensorboard=tensorboard)
    done = resume_checkpoint(run.checkpoint, resume=resume, force=force, config_hash=run.config_hash, model=model,
                             optimizer=run.optimizer, scheduler=run.scheduler, stateful=run.stateful)
    log.truncate_after(done)
    run.saved = done
    if done and rank == 0:
        tqdm.write(resume_line(name, "iteration", done, cfg.iterations, run.checkpoint), file=sys.stderr)
    broadcast_state(model)
    show = (sys.stderr.isatty() if progress is None else progress) and rank == 0
    status = status_lines(show, "meta-train", str(run_dir), cfg.iterations, done) if rank == 0 else None
    record: dict[str, Any] = {"iteration": done}
    validating = validate if rank == 0 else None
    val_accuracy = _missing_validation(validating, model, log, cfg, done)
    model.train()
    with tqdm(total=cfg.iterations, initial=done, disable=not show, desc="meta-train") as bar:
        for iteration in range(done + 1, cfg.iterations + 1):
            record = train_step(run, sampler, transform, cfg, iteration)
            log.append(record)
            bar.update()
            bar.set_postfix(loss=f"{record['loss']:.3f}", acc=f"{record['accuracy']:.3f}")
            if validating is not None and iteration % cfg.validate_every == 0:  # before this iteration's checkpoint
                val_accuracy = _validation_point(validating, model, log, iteration)
            if rank == 0 and (iteration % cfg.checkpoint_every == 0 or iteration == cfg.iterations):
                _save(run, iteration)
            if status is not None:
                status.update(iteration, record["loss"], val_accuracy)
    log.close()
    return record
