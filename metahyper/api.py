"""What ``import metahyper`` offers beyond re-exports: listings and trained models from disk.

``list_models`` / ``list_datasets`` / ``list_suites`` name what ``build_model``, ``load_store``
and ``metahyper run`` accept (also ``metahyper list models|datasets|suites``).
``load_model(checkpoint)`` and ``load_run(folder)`` rebuild a trained model from the recipe its
checkpoint records (``model_spec``: name, num_classes, options), without the suite file;
loading keeps ``torch.load(weights_only=True)``.
"""

from __future__ import annotations

import os
from pathlib import Path

import torch
from torch import nn

from metahyper.checkpoint import CheckpointError, load_checkpoint
from metahyper.data.sources import DATASETS
from metahyper.meta.pretrain import PRETRAINED_NAME
from metahyper.meta.train import CHECKPOINT_NAME
from metahyper.models import MODELS, build_model
from metahyper.models.heads import restore_metric_scale
from metahyper.resources import list_suites

__all__ = ["list_datasets", "list_models", "list_suites", "load_model", "load_run"]
STAGE_CHECKPOINTS = {"meta_train": CHECKPOINT_NAME, "pretrain": PRETRAINED_NAME}


def list_models() -> list[str]:
    """Names ``build_model`` accepts."""
    return MODELS.names()


def list_datasets() -> list[str]:
    """Names ``load_store`` accepts."""
    return DATASETS.names()


def load_model(checkpoint: str | os.PathLike, map_location: str | torch.device = "cpu") -> nn.Module:
    """The model saved in ``checkpoint``, rebuilt from its recorded recipe, in eval mode.

    Raises ``CheckpointError`` for a checkpoint without a recipe (written by metahyper before
    0.1.0 recorded one, or of a model not made by ``build_model``).
    """
    state = load_checkpoint(checkpoint, map_location=map_location)
    spec = state.get("model_spec")
    if not isinstance(spec, dict):
        raise CheckpointError(f"checkpoint {checkpoint} records no model recipe (model_spec); rebuild the model "
                              "with metahyper.build_model(...) and load_state_dict(state['model'])")
    model = build_model(spec["name"], spec["num_classes"], **spec["options"])
    restore_metric_scale(model, state["model"])  # a meta_baseline model's temperature (beyond the recipe)
    model.load_state_dict(state["model"])
    return model.eval()


def load_run(folder: str | os.PathLike, stage: str = "meta_train", run: str | None = None,
             map_location: str | torch.device = "cpu") -> nn.Module:
    """The trained model of a run folder (``OUT/runs/RUN``) or of a suite folder (``OUT``;
    ``run`` names the run when it has several) after ``stage`` (``meta_train`` or ``pretrain``)."""
    if stage not in STAGE_CHECKPOINTS:
        raise ValueError(f"stage must be one of {', '.join(STAGE_CHECKPOINTS)}, got {stage!r}")
    folder = Path(folder)
    if (folder / "runs").is_dir():
        found = sorted(p.name for p in (folder / "runs").iterdir() if p.is_dir())
        if run is None and len(found) != 1:
            raise ValueError(f"{folder} holds runs {', '.join(found) or '(none)'}: name one with run=...")
        folder = folder / "runs" / (run or found[0])
    path = folder / stage / STAGE_CHECKPOINTS[stage]
    if not path.is_file():
        raise FileNotFoundError(f"{path} does not exist: has the {stage} stage of {folder} run?")
    return load_model(path, map_location)
