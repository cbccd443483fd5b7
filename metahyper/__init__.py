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
"""

from metahyper._version import __version__
from metahyper.api import list_datasets, list_models, list_suites, load_model, load_run
from metahyper.data import (
    EpisodeSampler,
    EpisodeSet,
    ImageStore,
    TaskBatch,
    fixed_episodes,
    load_store,
    transforms,
)
from metahyper.data.loader import EpisodeDataset
from metahyper.eval.evaluate import evaluate
from metahyper.eval.stats import EvalResult
from metahyper.meta.inner import forward_with
from metahyper.meta.maml import MamlConfig, adapt
from metahyper.meta.predictors import maml_predictor
from metahyper.meta.train import MetaTrainConfig, meta_train
from metahyper.models import MetaModel, ParamRole, as_meta_model, build_model

__all__ = [
    "EpisodeDataset", "EpisodeSampler", "EpisodeSet", "EvalResult", "ImageStore", "MamlConfig", "MetaModel",
    "MetaTrainConfig", "ParamRole", "TaskBatch", "__version__", "adapt", "as_meta_model", "build_model", "evaluate",
    "fixed_episodes", "forward_with", "list_datasets", "list_models", "list_suites", "load_model", "load_run",
    "load_store", "maml_predictor", "meta_train", "transforms",
]
