"""``EpisodeDataset``: an episode sampler as a ``torch.utils.data.IterableDataset``; and
``collate_tasks``, the ``collate_fn`` that lets a ``DataLoader`` batch ``TaskBatch`` items.

Meta-batch ``step`` is always the same episodes (``EpisodeSampler.sample_for`` keys them on
seed, split and index), so it does not matter which process or worker draws it: rank ``r`` of
``w`` gets its ``tasks / w`` share of every meta-batch, and DataLoader worker ``k`` of ``K``
draws the steps ``k, k + K, k + 2K, ...``. A ``DataLoader(dataset, batch_size=None,
num_workers=K)`` takes one item from each worker in turn, so it yields exactly the batches of
the sampler itself, in order, for any ``K``.
"""

from __future__ import annotations

from typing import Iterator, Sequence

import torch
from torch.utils.data import IterableDataset, get_worker_info

from metahyper.data.episodes import EpisodeSampler, TaskBatch
from metahyper.data.rng import keyed_generator
from metahyper.data.transforms import Transform
from metahyper.ranks import world


class EpisodeDataset(IterableDataset):
    """Meta-batches ``start .. start + steps - 1`` of ``sampler``, ``tasks`` episodes each (this
    rank's share of them under ``torch.distributed``; ``rank``/``world_size`` override).

    ``transform(images, generator)`` (e.g. ``transforms.Compose``), when given, runs in the
    worker with a generator keyed on (sampler seed, step, rank), so augmentation is as
    reproducible as the episodes. Use it with ``DataLoader(dataset, batch_size=None, ...)``:
    every item is already a ``TaskBatch``.
    """

    def __init__(self, sampler: EpisodeSampler, steps: int, tasks: int = 1, start: int = 0,
                 transform: Transform | None = None, rank: int | None = None, world_size: int | None = None):
        if not isinstance(steps, int) or steps < 1:
            raise ValueError(f"steps must be an integer >= 1, got {steps!r}")
        if not isinstance(start, int) or start < 0:
            raise ValueError(f"start must be an integer >= 0, got {start!r}")
        found_rank, found_size = world()
        self.rank = found_rank if rank is None else rank
        self.world_size = found_size if world_size is None else world_size
        if tasks % self.world_size:
            raise ValueError(f"tasks={tasks} must be divisible by world_size={self.world_size}")
        self.sampler, self.steps, self.tasks, self.start, self.transform = sampler, steps, tasks, start, transform

    def __len__(self) -> int:
        return self.steps

    def item(self, step: int) -> TaskBatch:
        """This rank's share of meta-batch ``step`` (transformed when a transform is set)."""
        batch = self.sampler.sample_for(step, self.rank, self.world_size, self.tasks)
        if self.transform is None:
            return batch
        generator = keyed_generator("metahyper-loader", self.sampler.seed, step, self.rank)
        return batch.map_images(lambda x: self.transform(x, generator))

    def __iter__(self) -> Iterator[TaskBatch]:
        info = get_worker_info()
        worker, workers = (0, 1) if info is None else (info.id, info.num_workers)
        for step in range(self.start + worker, self.start + self.steps, workers):
            yield self.item(step)



def collate_tasks(items: Sequence[TaskBatch]) -> TaskBatch:
    """One ``TaskBatch`` of every task of ``items`` (``TaskBatch``es of any T, in order), each
    tensor concatenated along the task dimension: ``DataLoader(episodes, batch_size=4,
    collate_fn=collate_tasks)`` over single episodes (e.g. ``[sampler.episode(i) for i in ...]``)
    yields meta-batches of T = 4. Raises ``ValueError`` for no items or tasks of different shapes."""
    if len(items) == 0:
        raise ValueError("collate_tasks needs at least one TaskBatch")
    if not all(isinstance(item, TaskBatch) for item in items):
        raise TypeError(f"collate_tasks takes TaskBatch items, got {sorted({type(i).__name__ for i in items})}")
    shapes = [tuple(t.shape[1:] for t in item) for item in items]
    if len(set(shapes)) > 1:
        index = next(i for i, shape in enumerate(shapes) if shape != shapes[0])
        got, first = (f"{shape[0]}, {shape[2]}" for shape in (shapes[index], shapes[0]))
        raise ValueError(f"collate_tasks: item {index} has tasks of another shape than item 0 (support, query "
                         f"[N, C, H, W]: {got} against {first}): batch episodes of one way, shot, query and size")
    return TaskBatch(*(torch.cat(parts) for parts in zip(*items)))
