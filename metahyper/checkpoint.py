"""Atomic, resumable checkpoints (docs/architecture.md section 11).

A checkpoint holds the model, optimiser and scheduler state dicts, the RNG states (torch's CPU
and CUDA default generators plus the state of every named stateful object: ``torch.Generator``
objects, and samplers/transforms with ``state_dict``/``load_state_dict``), the iteration and the
hash of the config that wrote it, the model's recipe (``model_spec``: name, num_classes,
options, when ``build_model`` made it) and the package version. Only tensors and plain
containers are stored, so loading uses ``torch.load(weights_only=True)``. Saving writes a
temporary file in the same folder, fsyncs it and ``os.replace``s the target: a crash
mid-write leaves the previous checkpoint intact.
"""

from __future__ import annotations

import os
import pickle
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from torch import nn

from metahyper._version import __version__
from metahyper.atomic import atomic_write
from metahyper.errors import CheckpointError

FORMAT_VERSION = 1


_KEYS = {"format", "iteration", "config_hash", "model"}


def damaged_message(path: Path, error: BaseException | None) -> str:
    """Why ``path`` cannot be read and what to do. torch's own text is not passed on: for a
    refused pickle it recommends ``weights_only=False``, which would run what the file carries."""
    if error is None:
        why = f"it does not hold a metahyper checkpoint of format {FORMAT_VERSION}"
    elif isinstance(error, pickle.UnpicklingError) or "weights_only" in str(error):
        why = "the safe loader refused its content: it is not made of tensors and plain containers"
    else:
        first = str(error).strip().split(". ")[0].splitlines()[0][:200] if str(error).strip() else ""
        why = f"{type(error).__name__}{': ' + first if first else ''}"
    return (f"checkpoint {path} is damaged or not a metahyper checkpoint ({why}). Delete {path.absolute().parent} "
            "(and the later stages' folders of that run) to redo that stage; the files of the earlier stages are "
            "intact.")


def _state_of(obj: Any) -> Any:
    if isinstance(obj, torch.Generator):
        return obj.get_state()
    return obj.state_dict()


def _restore(obj: Any, state: Any) -> None:
    if isinstance(obj, torch.Generator):
        obj.set_state(state.cpu())  # generator states are CPU byte tensors, whatever map_location did
    else:
        obj.load_state_dict(state)


def save_checkpoint(
    path: str | os.PathLike,
    *,
    iteration: int,
    config_hash: str,
    model: nn.Module,
    optimizer: torch.optim.Optimizer | None = None,
    scheduler: Any | None = None,
    stateful: Mapping[str, Any] | None = None,
) -> None:
    """Write a checkpoint to ``path`` atomically (temp file + fsync + ``os.replace``).

    ``stateful`` maps names to ``torch.Generator`` objects or objects with ``state_dict()`` whose
    state must be restored on resume (an episode sampler, a transform's generator).
    """
    state = {
        "format": FORMAT_VERSION,
        "iteration": int(iteration),
        "config_hash": str(config_hash),
        "model_spec": getattr(model, "metahyper_spec", None),
        "version": __version__,
        "model": model.state_dict(),
        "optimizer": None if optimizer is None else optimizer.state_dict(),
        "scheduler": None if scheduler is None else scheduler.state_dict(),
        "rng": {
            "torch_cpu": torch.get_rng_state(),
            "torch_cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_initialized() else [],
            "objects": {name: _state_of(obj) for name, obj in (stateful or {}).items()},
        },
    }
    with atomic_write(path, "wb") as handle:
        torch.save(state, handle)


def load_checkpoint(
    path: str | os.PathLike,
    *,
    config_hash: str | None = None,
    force: bool = False,
    map_location: str | torch.device = "cpu",
) -> dict[str, Any]:
    """Read a checkpoint (``weights_only=True``); refuse one written by another config.

    With ``config_hash`` given, a checkpoint whose hash differs raises ``CheckpointError``
    unless ``force=True``.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint {path} does not exist")
    try:
        state = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as error:  # truncated zip, random bytes, a pickle holding more than tensors
        raise CheckpointError(damaged_message(path, error)) from None
    if not isinstance(state, dict) or state.get("format") != FORMAT_VERSION or not _KEYS <= state.keys():
        raise CheckpointError(damaged_message(path, None))
    if config_hash is not None and state["config_hash"] != config_hash and not force:
        raise CheckpointError(
            f"checkpoint {path} was written by a run with config hash {state['config_hash'][:12]}, "
            f"but the current config hashes to {config_hash[:12]}; resuming would mix two configs. "
            "Start a new run folder (--out), or pass force=True to resume anyway."
        )
    return state


def restore_checkpoint(
    state: Mapping[str, Any],
    *,
    model: nn.Module,
    optimizer: torch.optim.Optimizer | None = None,
    scheduler: Any | None = None,
    stateful: Mapping[str, Any] | None = None,
) -> int:
    """Load a ``load_checkpoint`` result into the live objects; returns the iteration."""
    model.load_state_dict(state["model"])
    if optimizer is not None:
        optimizer.load_state_dict(state["optimizer"])
    if scheduler is not None:
        scheduler.load_state_dict(state["scheduler"])
    rng = state["rng"]
    torch.set_rng_state(rng["torch_cpu"].cpu())
    if rng["torch_cuda"] and torch.cuda.is_available():
        torch.cuda.set_rng_state_all([state.cpu() for state in rng["torch_cuda"]])
    saved = rng["objects"]
    for name, obj in (stateful or {}).items():
        if name not in saved:
            raise CheckpointError(f"checkpoint holds no state for {name!r} (it has: {sorted(saved)})")
        _restore(obj, saved[name])
    return int(state["iteration"])


def resume_checkpoint(
    path: str | os.PathLike,
    *,
    resume: bool,
    force: bool,
    config_hash: str,
    model: nn.Module,
    optimizer: torch.optim.Optimizer | None = None,
    scheduler: Any | None = None,
    stateful: Mapping[str, Any] | None = None,
) -> int:
    """Iteration to continue after: 0 when ``path`` does not exist, else the restored checkpoint's.

    An existing checkpoint without ``resume`` raises ``FileExistsError`` (a fresh run must not
    overwrite another run's state); a config-hash mismatch raises unless ``force``.
    """
    path = Path(path)
    if not path.exists():
        return 0
    if not resume:
        raise FileExistsError(
            f"{path} already exists: pass resume=True to continue that run, or use a new run folder"
        )
    state = load_checkpoint(path, config_hash=config_hash, force=force)
    return restore_checkpoint(state, model=model, optimizer=optimizer, scheduler=scheduler, stateful=stateful)


def resume_line(name: str, unit: str, done: int, total: int, checkpoint: Path) -> str:
    """What a training loop says when its run folder already has a checkpoint at ``done`` of
    ``total`` ``unit``s: it resumes, or (rerunning a finished example) there is nothing to do."""
    if done >= total:
        return (f"{name} is already finished ({unit} {done}/{total}, checkpoint {checkpoint}); nothing to do "
                "(a new run folder starts afresh)")
    return f"resuming {name} from {unit} {done} (checkpoint {checkpoint})"
