"""Episodic data: image stores, readers for the real formats, class splits, episode samplers
and batched transforms.

Example::

    from metahyper.data import load_store, EpisodeSampler, transforms
    store = load_store("miniimagenet", "/data/miniimagenet", "train")   # or "synthetic", None
    sampler = EpisodeSampler(store, way=5, shot=5, query=15, seed=0, split_name="train")
    batch = sampler.sample(4)                  # TaskBatch, uint8 [4, 25, 3, 84, 84] support
    batch = batch.to("cuda").map_images(transforms.to_float)
"""

from metahyper.data import (  # noqa: F401  (register readers)
    cifar, miniimagenet, mnist, omniglot, omniglot_full, omniglot_lake_runs, synthetic)
from metahyper.data import transforms
from metahyper.data.episodes import EpisodeSampler, EpisodeSet, TaskBatch, fixed_episodes
from metahyper.data.load import load_store
from metahyper.data.loader import collate_tasks
from metahyper.data.sources import DATASETS, DataFormatError, safe_load_pickle, verify_checksums
from metahyper.data.splits import ClassSplit, load_split
from metahyper.data.stores import ImageStore
from metahyper.data.synthetic import make_synthetic

__all__ = [
    "DATASETS", "ClassSplit", "DataFormatError", "EpisodeSampler", "EpisodeSet", "ImageStore", "TaskBatch",
    "collate_tasks", "fixed_episodes", "load_split", "load_store", "make_synthetic", "safe_load_pickle", "transforms",
    "verify_checksums",
]
