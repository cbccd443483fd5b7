"""Training and evaluating character language models: truncated BPTT, bits per character.

Recipe (Ha et al., Appendix A.2, the defaults of ``LMConfig``): the training stream is cut into
``batch_size`` contiguous streams read ``seq_len`` characters at a time, the state carried
(detached) from one window to the next and reset when the streams wrap around; Adam with lr
1e-3; gradients clipped to global norm 1.0. Validation and test score the **whole** stream
(``stream_bpc``): every character after the first is predicted once, the state carried across
sequences, with no dynamic evaluation. The test figure is that of the weights with the best
validation bpc (saved as ``best.pt``).

Determinism: batches are a fixed function of the step, and dropout masks come from one
generator keyed on the seed whose state is checkpointed, together with the carried state, so a
resumed run continues with the same numbers on the CPU.
"""

from __future__ import annotations

import math
import os
import sys
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from tqdm import tqdm

from metahyper.atomic import write_text_atomic
from metahyper.checkpoint import load_checkpoint, resume_checkpoint, save_checkpoint
from metahyper.classify.train import json_text
from metahyper.config import config_hash as hash_config
from metahyper.data.rng import keyed_generator
from metahyper.lm.data import Corpus
from metahyper.lm.model import CharLM, detach_state
from metahyper.meta.metrics_log import MetricsLog
from metahyper.meta.train import NonFiniteLossError

CHECKPOINT_NAME = "checkpoint.pt"
BEST_NAME = "best.pt"
METRICS_NAME = "metrics.jsonl"
RESULT_NAME = "result.json"
LN2 = math.log(2.0)


@dataclass(frozen=True)
class LMConfig:
    """Language-model training settings; the paper's values as defaults."""

    steps: int = 10000
    seq_len: int = 100
    batch_size: int = 128
    lr: float = 1e-3
    clip: float = 1.0
    eval_every: int = 1000  # steps between validation passes (and the last step)
    eval_batch_size: int = 16  # valid/test streams are scored as this many contiguous pieces
    log_every: int = 50
    checkpoint_every: int = 200
    seed: int = 0

    def __post_init__(self) -> None:
        for name in ("steps", "seq_len", "batch_size", "eval_every", "eval_batch_size", "log_every",
                     "checkpoint_every"):
            if getattr(self, name) < 1:
                raise ValueError(f"LMConfig.{name} must be >= 1, got {getattr(self, name)}")
        if not (self.lr > 0 and self.clip > 0):
            raise ValueError(f"LMConfig needs lr > 0 and clip > 0, got {self.lr}, {self.clip}")


@dataclass(frozen=True)
class LMResult:
    """Bits per character of the best-validation weights, and the step they come from."""

    valid_bpc: float
    test_bpc: float
    best_step: int


def batchify(stream: torch.Tensor, batch: int) -> torch.Tensor:
    """``[L, batch]``: ``stream`` cut into ``batch`` contiguous columns (the tail is dropped)."""
    length = len(stream) // batch
    if length < 2:
        raise ValueError(f"a stream of {len(stream)} symbols is too short for {batch} columns")
    return stream[: length * batch].view(batch, length).t().contiguous()


def stream_bpc(model: CharLM, stream: torch.Tensor, batch: int, seq_len: int) -> float:
    """Bits per character of ``model`` on the whole ``stream``: it is cut into ``batch``
    contiguous pieces, each read from a zero state with the state carried across windows of
    ``seq_len``; every symbol but the first is predicted once (padding is masked out)."""
    if len(stream) < 2:
        raise ValueError("a stream needs at least 2 symbols to be scored")
    device = model.classifier.weight.device
    n = len(stream) - 1
    cols = min(batch, n)
    length = -(-n // cols)
    pad = cols * length - n

    def columns(values: torch.Tensor) -> torch.Tensor:
        return torch.cat([values, values.new_zeros(pad)]).view(cols, length).t().to(device)

    x, y = columns(stream[:-1]), columns(stream[1:])
    mask = columns(torch.ones(n, dtype=torch.bool))
    was_training, state, total = model.training, None, torch.zeros((), dtype=torch.float64, device=device)
    model.eval()
    with torch.no_grad():
        for start in range(0, length, seq_len):
            logits, state = model(x[start:start + seq_len], state)
            nll = F.cross_entropy(logits.flatten(0, 1), y[start:start + seq_len].flatten(), reduction="none")
            total += (nll * mask[start:start + seq_len].flatten()).sum(dtype=torch.float64)
    model.train(was_training)
    return total.item() / n / LN2


class _Carry:
    """What a resumed run needs besides the model and optimiser: the carried state and the best
    validation so far (saved in the checkpoint through ``state_dict``)."""

    def __init__(self) -> None:
        self.state: list[tuple[torch.Tensor, ...]] | None = None
        self.best_bpc, self.best_step = math.inf, 0

    def state_dict(self) -> dict[str, Any]:
        return {"state": None if self.state is None else [list(layer) for layer in self.state],
                "best_bpc": self.best_bpc, "best_step": self.best_step}

    def load_state_dict(self, saved: dict[str, Any]) -> None:
        self.state = None if saved["state"] is None else [tuple(layer) for layer in saved["state"]]
        self.best_bpc, self.best_step = float(saved["best_bpc"]), int(saved["best_step"])


def train_step(model: CharLM, optimizer: torch.optim.Optimizer, data: torch.Tensor, step: int, cfg: LMConfig,
               carry: _Carry, noise: torch.Generator) -> dict[str, float]:
    """One truncated-BPTT update on window ``(step - 1) mod windows`` of ``data`` ``[L, B]``."""
    windows = (len(data) - 1) // cfg.seq_len
    start = ((step - 1) % windows) * cfg.seq_len
    if start == 0:
        carry.state = None
    x, y = data[start:start + cfg.seq_len], data[start + 1:start + cfg.seq_len + 1]
    logits, state = model(x, carry.state, noise)
    loss = F.cross_entropy(logits.flatten(0, 1), y.flatten()) / LN2
    if not math.isfinite(loss.item()):
        raise NonFiniteLossError(f"language-model training stopped at step {step}: loss {loss.item()}")
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    grad_norm = torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.clip)
    optimizer.step()
    carry.state = detach_state(state)
    return {"bpc": loss.item(), "grad_norm": float(grad_norm)}


def _validate(model: CharLM, corpus: Corpus, cfg: LMConfig, step: int, carry: _Carry, folder: Path,
              digest: str) -> dict[str, Any]:
    """Validation bpc at ``step``; the best weights so far go to ``best.pt``."""
    bpc = stream_bpc(model, corpus.valid, cfg.eval_batch_size, cfg.seq_len)
    if bpc < carry.best_bpc:
        carry.best_bpc, carry.best_step = bpc, step
        save_checkpoint(folder / BEST_NAME, iteration=step, config_hash=digest, model=model)
    return {"kind": "val", "iteration": step, "split": "valid", "bpc": bpc}


def train_lm(model: CharLM, corpus: Corpus, cfg: LMConfig, run_dir: str | os.PathLike, resume: bool = False, *,
             force: bool = False, config_hash: str | None = None, progress: bool | None = None,
             tensorboard: bool = False) -> LMResult:
    """Train ``model`` (on its device) on ``corpus.train``; write ``checkpoint.pt`` (resumable
    with ``resume=True``; another config's is refused unless ``force``), ``best.pt``,
    ``metrics.jsonl`` ("train": bpc and gradient norm every ``log_every`` steps; "val": valid
    bpc) and ``result.json``; ``tensorboard`` mirrors the JSONL records into ``run_dir/tb/``
    (``metahyper.meta.metrics_log``). Returns the best-validation weights' valid and test bpc."""
    folder, digest = Path(run_dir), config_hash or hash_config(cfg)
    device = model.classifier.weight.device
    data = batchify(corpus.train, cfg.batch_size).to(device)
    if len(data) <= cfg.seq_len:
        raise ValueError(f"training split too short: {len(data)} symbols per column for seq_len {cfg.seq_len}")
    optimizer = torch.optim.Adam(model.parameters(), lr=cfg.lr)
    carry, noise = _Carry(), keyed_generator("lm-dropout", cfg.seed)
    stateful = {"carry": carry, "noise": noise}
    done = resume_checkpoint(folder / CHECKPOINT_NAME, resume=resume, force=force, config_hash=digest,
                             model=model, optimizer=optimizer, stateful=stateful)
    if carry.state is not None:
        carry.state = [tuple(t.to(device) for t in layer) for layer in carry.state]
    log = MetricsLog(folder / METRICS_NAME, tensorboard=tensorboard)
    log.truncate_after(done)
    show = sys.stderr.isatty() if progress is None else progress
    model.train()
    bar = tqdm(range(done + 1, cfg.steps + 1), initial=done, total=cfg.steps, disable=not show, desc="lm")
    for step in bar:
        stats = train_step(model, optimizer, data, step, cfg, carry, noise)
        if step % cfg.log_every == 0 or step == cfg.steps:
            log.append({"kind": "train", "iteration": step, **stats})
            bar.set_postfix(bpc=f"{stats['bpc']:.3f}")
        if step % cfg.eval_every == 0 or step == cfg.steps:
            log.append(_validate(model, corpus, cfg, step, carry, folder, digest))
            model.train()
        if step % cfg.checkpoint_every == 0 or step == cfg.steps:
            save_checkpoint(folder / CHECKPOINT_NAME, iteration=step, config_hash=digest, model=model,
                            optimizer=optimizer, stateful=stateful)
    log.close()
    return _finish(model, corpus, cfg, carry, folder, digest)


def _finish(model: CharLM, corpus: Corpus, cfg: LMConfig, carry: _Carry, folder: Path, digest: str) -> LMResult:
    """Load the best-validation weights into ``model``, score valid and test, write result.json."""
    model.load_state_dict(load_checkpoint(folder / BEST_NAME, config_hash=digest)["model"])
    valid = stream_bpc(model, corpus.valid, cfg.eval_batch_size, cfg.seq_len)
    test = stream_bpc(model, corpus.test, cfg.eval_batch_size, cfg.seq_len)
    result = LMResult(valid, test, carry.best_step)
    write_text_atomic(folder / RESULT_NAME, json_text({"config_hash": digest, **asdict(result)}))
    return result
