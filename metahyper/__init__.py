"""metahyper: meta-learning benchmarks with hypernetwork-generated ResNets.

The names most code needs are importable from here::

    import metahyper
    store = metahyper.load_store("synthetic", None, "train", family="source", num_classes=20)
    sampler = metahyper.EpisodeSampler(store, way=5, shot=1, query=15, seed=0, episodes=100)
    model = metahyper.build_model("hyper_resnet12", num_classes=5)
    model = metahyper.load_run("runs/smoke/runs/hyper_wrn10_1")   # a trained run, no suite file
    model = metahyper.as_meta_model(torchvision.models.resnet18(num_classes=5), classifier="fc")
    fast = metahyper.adapt(model, support_x, support_y, steps=5, lr=0.01)   # your own outer loop
    logits = metahyper.forward_with(model, fast, query_x)

Subpackages: episodic data (``metahyper.data``), plain and hypernetwork backbones
(``metahyper.models``), MAML with role-split inner/outer loops (``metahyper.meta``),
cross-domain evaluation with confidence intervals (``metahyper.eval``); the ``metahyper``
command runs benchmark suites. docs/architecture.md describes how they fit together.

The names are loaded on first use (PEP 562 ``__getattr__``): ``import metahyper`` alone imports
no torch, so the command's ``--version``, ``--help``, ``list suites`` and ``status`` start at once.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from metahyper._version import __version__
from metahyper.lazy import lazy_attributes

_EXPORTS = {
    "metahyper.api": ("list_datasets", "list_models", "list_suites", "load_model", "load_run"),
    "metahyper.data": ("EpisodeSampler", "EpisodeSet", "ImageStore", "TaskBatch", "collate_tasks", "fixed_episodes",
                       "load_store", "transforms"),
    "metahyper.data.loader": ("EpisodeDataset",),
    "metahyper.eval.evaluate": ("evaluate",),
    "metahyper.eval.stats": ("EvalResult",),
    "metahyper.meta.inner": ("forward_with",),
    "metahyper.meta.maml": ("MamlConfig", "adapt"),
    "metahyper.meta.predictors": ("maml_predictor",),
    "metahyper.meta.train": ("MetaTrainConfig", "meta_train"),
    "metahyper.models": ("MetaModel", "ParamRole", "as_meta_model", "build_model"),
}
__getattr__, __dir__ = lazy_attributes(__name__, _EXPORTS, subpackages=("data", "eval", "meta", "models"))
__all__ = sorted(["__version__", *(name for names in _EXPORTS.values() for name in names)])

if TYPE_CHECKING:  # what type checkers and IDEs see
    from metahyper.api import list_datasets, list_models, list_suites, load_model, load_run
    from metahyper.data import (EpisodeSampler, EpisodeSet, ImageStore, TaskBatch, collate_tasks, fixed_episodes,
                                load_store, transforms)
    from metahyper.data.loader import EpisodeDataset
    from metahyper.eval.evaluate import evaluate
    from metahyper.eval.stats import EvalResult
    from metahyper.meta.inner import forward_with
    from metahyper.meta.maml import MamlConfig, adapt
    from metahyper.meta.predictors import maml_predictor
    from metahyper.meta.train import MetaTrainConfig, meta_train
    from metahyper.models import MetaModel, ParamRole, as_meta_model, build_model
