"""Episode types and episodic task samplers.

An episode is drawn from a ``torch.Generator`` seeded from (seed, split name, episode index)
only, never from the global RNG, so the same seed gives the same episodes on every run,
device and rank. Episodes are first built as store row indices ordered support-then-query;
a meta-batch is then gathered with one ``index_select`` on the flat [N, C*H*W] image view.

Some data sets define their evaluation episodes themselves (Lake's 20 one-shot runs,
``metahyper/data/omniglot_lake_runs.py``): they register a ``DataEpisodes`` in
``FIXED_EPISODES`` under the data set's name, and the evaluate stage scores such a target on
exactly those episodes instead of drawing any.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Callable, Iterator, Sequence

import numpy as np
import torch
from torch import Tensor

from metahyper.atomic import atomic_write
from metahyper.data.groupings import group_names
from metahyper.data.rng import keyed_generator
from metahyper.data.stores import ImageStore
from metahyper.files import UnusableFileError
from metahyper.registry import Registry


@dataclass(frozen=True)
class TaskBatch:
    """T tasks of ``way`` classes each; labels are 0..way-1 within every task.

    support_x: [T, way*shot, C, H, W]   support_y: [T, way*shot] (int64)
    query_x:   [T, way*query, C, H, W]  query_y:   [T, way*query] (int64)
    Images are uint8 straight from the sampler, float after a transform (``map_images``).
    Within a task the support images are ordered by label block (the k-th block of ``shot``
    images has label k); the query images come in a random order (``query_y`` says their labels).
    """

    support_x: Tensor
    support_y: Tensor
    query_x: Tensor
    query_y: Tensor

    def __iter__(self) -> Iterator[Tensor]:
        """``support_x, support_y, query_x, query_y = batch``."""
        return iter((self.support_x, self.support_y, self.query_x, self.query_y))

    def to(self, device: torch.device | str, non_blocking: bool = False) -> "TaskBatch":
        """The same batch with all four tensors on ``device``."""
        return TaskBatch(*(t.to(device, non_blocking=non_blocking)
                           for t in (self.support_x, self.support_y, self.query_x, self.query_y)))

    def map_images(self, fn: Callable[[Tensor], Tensor]) -> "TaskBatch":
        """The batch with ``fn`` applied to ``support_x`` and then to ``query_x`` (in that order,
        so a random transform draws the support's numbers first); the labels are kept. Apply a
        ``Transform`` with its generator as ``batch.map_images(lambda x: transform(x, generator))``."""
        return replace(self, support_x=fn(self.support_x), query_x=fn(self.query_x))


def check_episode_args(store: ImageStore, way: int, shot: int, query: int) -> None:
    """Raises ``ValueError`` naming the argument when (way, shot, query) does not fit ``store``."""
    for name, value, least in (("way", way, 1), ("shot", shot, 1), ("query", query, 0)):
        if not isinstance(value, int) or value < least:
            raise ValueError(f"{name} must be an integer >= {least}, got {value!r}")
    if way > store.num_classes:
        raise ValueError(f"way={way} exceeds the {store.num_classes} classes of the store ({store.source})")
    counts = store.images_per_class
    fewest = int(counts.argmin())
    if shot + query > int(counts[fewest]):
        raise ValueError(f"shot+query={shot + query} (shot={shot}, query={query}) exceeds the "
                         f"{int(counts[fewest])} images of class {store.class_names[fewest]!r}, "
                         "the fewest in the store")


Groups = str | Sequence[str]  # a registered grouping's name, or one group name per class


def grouping_label(groups: Groups | None) -> str | None:
    """What episode sets record (and hash) as their grouping: the grouping's name, or for an
    explicit list ``classes-<sha256 of the list, 16 hex digits>``; None without groups."""
    if groups is None or isinstance(groups, str):
        return groups
    listing = json.dumps([str(name) for name in groups])
    return f"classes-{hashlib.sha256(listing.encode()).hexdigest()[:16]}"


def class_groups(store: ImageStore, groups: Groups, way: int) -> list[Tensor]:
    """The class ids of each group with at least ``way`` classes, groups in name order.
    ``groups`` is a grouping's name (``metahyper.data.groupings``) or one group name per class;
    raises ``ValueError`` when it is unknown, does not name one group per class, or no group
    is big enough."""
    if isinstance(groups, str):
        groups = group_names(store, groups)
    if len(groups) != store.num_classes:
        raise ValueError(f"groups names {len(groups)} classes, the store has {store.num_classes} ({store.source})")
    members: dict[str, list[int]] = {}
    for k, name in enumerate(groups):
        members.setdefault(str(name), []).append(k)
    eligible = [torch.tensor(ids) for _, ids in sorted(members.items()) if len(ids) >= way]
    if not eligible:
        raise ValueError(f"way={way} exceeds the classes of every group (largest: "
                         f"{max(map(len, members.values()))} classes) of {store.source!r}")
    return eligible


def gather(store: ImageStore, rows: Tensor, labels: Tensor, n_support: int, out: Tensor | None = None) -> TaskBatch:
    """Builds a TaskBatch from episode rows.

    rows, labels: int64 [T, n_support + n_query] (store rows and task labels, support first).
    One ``index_select`` copies all images, ordered [all support | all query], into ``out``
    (uint8 [T*(n_support+n_query), C*H*W], reused) or a new tensor; the four outputs are views,
    on the device of the store's images (the CPU-made rows and labels are moved there).
    """
    tasks, per_task = rows.shape
    flat = store.images.view(len(store), -1)
    index = torch.cat([rows[:, :n_support].reshape(-1), rows[:, n_support:].reshape(-1)]).to(flat.device)
    labels = labels.to(flat.device)
    images = torch.index_select(flat, 0, index, out=out) if out is not None else flat.index_select(0, index)
    split = tasks * n_support
    shape = store.image_shape
    return TaskBatch(images[:split].view(tasks, n_support, *shape), labels[:, :n_support],
                     images[split:].view(tasks, per_task - n_support, *shape), labels[:, n_support:])


class EpisodeSampler:
    """N-way K-shot Q-query episodes from an ImageStore.

    Per episode: ``way`` classes without replacement in a random order (label k = k-th class),
    ``shot + query`` distinct images per class (the first ``shot`` are support), so support and
    query are disjoint; the support is ordered by label, the query shuffled (drawn from the
    episode's own generator, so a query's position says nothing about its class and the same
    seed still gives the same order). ``sample(tasks)`` returns the next ``tasks`` episodes
    (indices ``next_index``, ``next_index + 1``, ...); ``episode(i)`` and ``batch(indices)``
    return given ones; ``episode_task(i)`` gives episode i's store rows and labels.
    ``reuse_buffer=True`` gathers into one internal buffer (a little faster; the returned uint8
    images are then only valid until the next call). Set ``next_index`` to resume.

    Iterable: with ``episodes=N`` (and ``tasks=T`` per batch), ``for batch in sampler`` runs
    ``len(sampler)`` = ceil(N / T) ``sample`` calls (the last one smaller when T does not divide
    N); ``sampler.iterate(n, tasks)`` does the same for an explicit number of episodes.
    ``groups`` (a grouping's name such as ``"alphabet"``, ``metahyper.data.groupings``, or one
    group name per class) draws every episode's classes from one group: a group chosen uniformly
    among those with at least ``way`` classes, then ``way`` of its classes (Lake's
    within-alphabet tasks). Without it episodes are unchanged. ``grouping`` is its label
    (``grouping_label``).
    """

    def __init__(self, store: ImageStore, way: int, shot: int, query: int, seed: int,
                 split_name: str = "train", reuse_buffer: bool = False, groups: Groups | None = None, *,
                 episodes: int | None = None, tasks: int = 1):
        check_episode_args(store, way, shot, query)
        for name, value in (("episodes", episodes), ("tasks", tasks)):
            if value is not None and (not isinstance(value, int) or value < 1):
                raise ValueError(f"{name} must be an integer >= 1, got {value!r}")
        self.episodes, self.tasks = episodes, tasks
        self._groups = None if groups is None else class_groups(store, groups, way)
        self.grouping = grouping_label(groups)
        self.store, self.way, self.shot, self.query = store, way, shot, query
        self.seed, self.split_name = int(seed), split_name
        self.next_index = 0
        self._order = torch.argsort(store.labels, stable=True)
        self._counts = store.images_per_class
        self._starts = torch.cumsum(self._counts, 0) - self._counts
        self._width = int(self._counts.max())
        self._ragged = bool((self._counts != self._width).any())
        blocks = torch.arange(way)
        self._support_labels, self._query_labels = blocks.repeat_interleave(shot), blocks.repeat_interleave(query)
        self._buffer: Tensor | None = None
        self._reuse = reuse_buffer

    def episode_task(self, index: int) -> tuple[Tensor, Tensor]:
        """(rows, labels) of episode ``index``, both int64 [way*(shot+query)]: store rows and
        task labels, the way*shot support (label-major) then the way*query query (shuffled)."""
        generator = keyed_generator("metahyper-episode", self.seed, self.split_name, index)
        if self._groups is None:
            classes = torch.randperm(self.store.num_classes, generator=generator)[: self.way]
        else:
            members = self._groups[int(torch.randint(len(self._groups), (1,), generator=generator))]
            classes = members[torch.randperm(len(members), generator=generator)[: self.way]]
        keys = torch.rand(self.way, self._width, generator=generator, dtype=torch.float64)
        if self._ragged:
            keys.masked_fill_(torch.arange(self._width) >= self._counts[classes, None], 2.0)
        picks = keys.topk(self.shot + self.query, dim=1, largest=False).indices
        rows = self._order[self._starts[classes, None] + picks]
        shuffle = torch.randperm(self.way * self.query, generator=generator)
        return (torch.cat([rows[:, : self.shot].reshape(-1), rows[:, self.shot :].reshape(-1)[shuffle]]),
                torch.cat([self._support_labels, self._query_labels[shuffle]]))

    def episode_rows(self, index: int) -> Tensor:
        """The store rows of ``episode_task(index)``."""
        return self.episode_task(index)[0]

    def batch(self, indices: Sequence[int]) -> TaskBatch:
        """The TaskBatch of the episodes with the given indices (T = len(indices))."""
        if len(indices) == 0:
            raise ValueError("need at least one episode index (tasks >= 1)")
        rows, labels = (torch.stack(parts) for parts in zip(*(self.episode_task(i) for i in indices)))
        out = None
        if self._reuse:
            size = (rows.numel(), int(np.prod(self.store.image_shape)))
            if self._buffer is None or self._buffer.shape != size:
                self._buffer = torch.empty(size, dtype=torch.uint8, device=self.store.images.device)
            out = self._buffer
        return gather(self.store, rows, labels, self.way * self.shot, out)

    def sample(self, tasks: int) -> TaskBatch:
        """The next ``tasks`` episodes as one TaskBatch; advances ``next_index``."""
        start = self.next_index
        self.next_index += tasks
        return self.batch(range(start, start + tasks))

    def iterate(self, episodes: int, tasks: int = 1) -> Iterator[TaskBatch]:
        """The next ``episodes`` episodes, ``tasks`` per TaskBatch (``sample`` calls)."""
        for start in range(0, episodes, tasks):
            yield self.sample(min(tasks, episodes - start))

    def _episodes(self) -> int:
        if self.episodes is None:
            raise TypeError("this EpisodeSampler has no length: pass episodes=N, or use sampler.iterate(n, tasks)")
        return self.episodes

    def __len__(self) -> int:
        """Batches per pass: ceil(episodes / tasks)."""
        return -(-self._episodes() // self.tasks)

    def __bool__(self) -> bool:
        return True  # a sampler without ``episodes`` has no length but is not "empty"

    def __iter__(self) -> Iterator[TaskBatch]:
        return self.iterate(self._episodes(), self.tasks)

    def episode(self, index: int) -> TaskBatch:
        """Episode ``index`` alone (T = 1)."""
        return self.batch([index])

    def sample_for(self, step: int, rank: int, world_size: int, tasks: int) -> TaskBatch:
        """Rank ``rank``'s share of meta-batch ``step`` (``tasks`` episodes in all, indices
        step*tasks .. step*tasks+tasks-1): a contiguous block of tasks/world_size of them, so
        the union over ranks is exactly the world-size-1 meta-batch."""
        if world_size < 1 or not 0 <= rank < world_size:
            raise ValueError(f"rank={rank} must lie in 0..world_size-1 (world_size={world_size})")
        if tasks % world_size:
            raise ValueError(f"tasks={tasks} must be divisible by world_size={world_size}")
        share = tasks // world_size
        start = step * tasks + rank * share
        return self.batch(range(start, start + share))


@dataclass(frozen=True)
class EpisodeSet:
    """Fixed evaluation episodes: store rows and labels, not images.

    rows, labels: int64 [n, way*(shot+query)], each row support first then query (as
    ``EpisodeSampler.episode_task``). ``store_fingerprint`` identifies the store they index;
    ``groups`` is the sampler's ``grouping`` (None: classes from the whole store).
    """

    rows: Tensor
    labels: Tensor
    way: int
    shot: int
    query: int
    seed: int
    split_name: str
    store_fingerprint: str
    groups: str | None = None

    def __len__(self) -> int:
        return self.rows.shape[0]

    @property
    def hash(self) -> str:
        """sha256 over (way, shot, query, store fingerprint[, groups]), the rows and the labels
        (an ungrouped set keeps the hash it had before groupings existed)."""
        grouped = [] if self.groups is None else [self.groups]
        header = json.dumps([self.way, self.shot, self.query, self.store_fingerprint, *grouped])
        digest = hashlib.sha256(header.encode())
        digest.update(self.rows.numpy().astype("<i8").tobytes())
        digest.update(self.labels.numpy().astype("<i8").tobytes())
        return digest.hexdigest()

    def batches(self, store: ImageStore, tasks: int) -> Iterator[TaskBatch]:
        """TaskBatches of up to ``tasks`` episodes, in order; ``store`` must be the one the
        set was made from (checked by fingerprint)."""
        if store.fingerprint() != self.store_fingerprint:
            raise ValueError(f"store {store.source!r} is not the store this episode set was made from")
        for start in range(0, len(self), tasks):
            stop = start + tasks
            yield gather(store, self.rows[start:stop], self.labels[start:stop], self.way * self.shot)

    def save(self, path: str | Path) -> None:
        """Writes an ``.npz`` (rows, labels, JSON metadata with the hash) atomically."""
        meta = {"way": self.way, "shot": self.shot, "query": self.query, "seed": self.seed,
                "split_name": self.split_name, "store_fingerprint": self.store_fingerprint, "hash": self.hash}
        if self.groups is not None:
            meta["groups"] = self.groups
        with atomic_write(path, "wb") as file:
            np.savez(file, rows=self.rows.numpy(), labels=self.labels.numpy(), meta=np.array(json.dumps(meta)))

    @classmethod
    def load(cls, path: str | Path) -> "EpisodeSet":
        """Reads a saved set; raises ``UnusableFileError`` (a ``ValueError``) naming the file when
        it cannot be read, a part is missing or the content does not match the stored hash. That
        hash only catches damage: a file edited and re-hashed passes it, so a suite folder checks
        its sets against a manifest kept beside them (``metahyper.pipeline.manifest``)."""
        try:
            with np.load(path, allow_pickle=False) as archive:
                missing = {"rows", "labels", "meta"} - set(archive.files)
                if missing:
                    raise UnusableFileError(f"{path}: not an episode set (missing {sorted(missing)})")
                meta = json.loads(str(archive["meta"]))
                rows, labels = torch.from_numpy(archive["rows"]), torch.from_numpy(archive["labels"])
        except UnusableFileError:
            raise
        except Exception as error:  # truncated zip, bad JSON, a member of another kind
            raise UnusableFileError(f"{path}: not a readable episode set ({type(error).__name__}); delete it to "
                                    "draw it again") from None
        fields = ("way", "shot", "query", "seed", "split_name", "store_fingerprint")
        if not isinstance(meta, dict) or set(meta) - {"groups"} != {*fields, "hash"}:
            raise UnusableFileError(f"{path}: episode set metadata must have exactly the keys "
                                    f"{sorted({*fields, 'hash'})} (and 'groups' for a grouped set)")
        episodes = cls(rows, labels, *(meta[f] for f in fields), groups=meta.get("groups"))
        if episodes.hash != meta["hash"]:
            raise UnusableFileError(f"{path}: episode set content does not match its stored hash (file corrupt or "
                                    "edited)")
        return episodes


def fixed_episodes(store: ImageStore, way: int, shot: int, query: int, n: int, seed: int,
                   split_name: str = "test", groups: Groups | None = None) -> EpisodeSet:
    """``n`` episodes, identical to ``EpisodeSampler(store, way, shot, query, seed,
    split_name, groups=groups).episode(i)`` for i = 0..n-1, as an EpisodeSet."""
    if n < 1:
        raise ValueError(f"n must be >= 1 episodes, got {n}")
    sampler = EpisodeSampler(store, way, shot, query, seed, split_name, groups=groups)
    rows, labels = (torch.stack(parts) for parts in zip(*(sampler.episode_task(i) for i in range(n))))
    return EpisodeSet(rows, labels, way, shot, query, int(seed), split_name, store.fingerprint(), sampler.grouping)


@dataclass(frozen=True)
class DataEpisodes:
    """The evaluation episodes a data set defines itself rather than a sampler draws.

    ``build(store)`` returns them as an ``EpisodeSet`` over the store the data set's reader
    returned (and raises ``ValueError`` for any other store); ``metric`` is how the literature
    reports scores on them: ``"accuracy"``, or ``"error_rate"`` (100 - mean accuracy, as Lake et
    al. report their runs). Calling the object calls ``build``.
    """

    build: Callable[[ImageStore], EpisodeSet]
    metric: str = "accuracy"

    def __post_init__(self) -> None:
        if self.metric not in ("accuracy", "error_rate"):
            raise ValueError(f"metric must be 'accuracy' or 'error_rate', got {self.metric!r}")

    def __call__(self, store: ImageStore) -> EpisodeSet:
        return self.build(store)


# data set name -> its DataEpisodes: ``FIXED_EPISODES.register(name)(DataEpisodes(build, metric))``
FIXED_EPISODES: Registry[EpisodeSet] = Registry("data set with fixed episodes")
